"""``emg-pipeline scan | stream | emulate``: live BLE boards, LSL streams and emulated boards.

- ``scan`` lists nearby supported boards (name, address, matching profile, RSSI);
  ``scan --lsl`` lists the Lab Streaming Layer streams on the network instead;
- ``stream PROFILE`` connects to a board, runs live detection with live events,
  reports packet loss at the end, and can record the stream (BDF+/EDF+ with the
  episodes as annotations) and write the episode file (``--out``, the same file
  ``detect`` and ``replay`` write). The stream is dated by this computer's clock
  when the board starts streaming: that is the recording's start time and gives
  every episode its ``onset_time`` (a session file's ``start_time`` does not apply
  to a live stream; its sites and ``timezone`` do). ``stream lsl:NAME`` (or
  ``--lsl-source NAME|type=EMG``) reads a Lab Streaming Layer stream instead of a
  board, with the same detection, losses from its timestamps and reconnects;
  ``--lsl`` publishes the conditioned EMG and the live events as LSL streams;
  ``--web [HOST:]PORT`` serves the live browser dashboard (:mod:`emg_pipeline.web`);
- ``emulate PROFILE`` runs one emulated board on a local virtual link and
  serves an HCI socket, so that ``stream PROFILE --emulator HOST:PORT`` (and
  ``scan --emulator HOST:PORT``) work end to end without hardware.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from emg_pipeline.commands._common import (
    add_episode_options,
    add_lsl_outlet_options,
    add_quiet_option,
    add_web_options,
    announce_lsl,
    report_lsl,
    settings_from_args,
    sites_from_args,
    stream_sinks,
)
from emg_pipeline.commands._types import endpoint, port, positive, probability, whole_at_least
from emg_pipeline.errors import BluetoothUnavailableError, UsageError
from emg_pipeline.pipeline import Pipeline
from emg_pipeline.profiles import list_profiles, load_profile
from emg_pipeline.run import StreamInfo, run_async
from emg_pipeline.sites import SiteMap

__all__ = ["register"]

DEFAULT_PORT = 7600


def register(subparsers: argparse._SubParsersAction,
             add_pipeline_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``scan``, ``stream`` and ``emulate`` subcommands."""
    profiles = ", ".join(list_profiles())
    p = subparsers.add_parser(
        "scan", help="list nearby supported BLE boards",
        description="Scan for BLE advertisements and list the boards a firmware profile "
                    "recognises: name, address, profile, RSSI (strongest first).")
    p.add_argument("--timeout", type=positive, default=5.0, metavar="S",
                   help="how long to scan (default 5 s)")
    p.add_argument("--emulator", type=endpoint, default=None, metavar="HOST:PORT",
                   help="scan the virtual link of 'emg-pipeline emulate' instead of the radio")
    p.add_argument("--lsl", action="store_true",
                   help="list the Lab Streaming Layer streams on the network instead of BLE "
                        "boards (name, type, channels, rate, format, source id, host)")
    p.set_defaults(func=_cmd_scan)

    p = subparsers.add_parser(
        "stream", help="live detection from a BLE board or an LSL stream",
        description="Connect to a BLE sEMG board described by a firmware profile (or to a Lab "
                    "Streaming Layer stream: lsl:NAME), detect twitches and prolonged spasms "
                    "live (events as they happen), reconnect after drops, and report packet "
                    "loss at the end. Ctrl-C stops the board cleanly. Profiles: "
                    f"{profiles} (or the path of a profile file).")
    p.add_argument("profile", metavar="PROFILE", nargs="?", default=None,
                   help="firmware profile name or .toml path, or lsl:NAME for an LSL stream")
    p.add_argument("--lsl-source", default=None, metavar="NAME|type=EMG",
                   help="read a Lab Streaming Layer stream instead of a board: by name, or "
                        "type=TYPE, source_id=ID (the first match); its timestamps give the "
                        "gaps of lost samples, and it is found again when it comes back")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="the board's address (default: the first board matching the profile)")
    p.add_argument("--emulator", type=endpoint, default=None, metavar="HOST:PORT",
                   help="connect through the virtual link of 'emg-pipeline emulate'")
    p.add_argument("--duration", type=positive, default=None, metavar="S",
                   help="stop after this much stream time (default: until Ctrl-C)")
    p.add_argument("--scan-timeout", type=positive, default=10.0, metavar="S",
                   help="how long to look for the board or the LSL stream (default 10 s)")
    p.add_argument("--record", default=None, metavar="FILE",
                   help="record the stream (.bdf: BDF+, .edf: EDF+) with the episodes as "
                        "annotations; lost samples are written as 0 and counted")
    add_episode_options(p, out_help="write the episode file, as 'detect' does, with "
                                    "wall-clock onset times ('-': standard output)")
    add_lsl_outlet_options(p)
    add_web_options(p)
    add_quiet_option(p)
    add_pipeline_options(p)
    p.set_defaults(func=_cmd_stream, compiles=True)

    p = subparsers.add_parser(
        "emulate", help="run an emulated BLE board (no hardware needed)",
        description="Run one emulated board speaking a firmware profile's exact protocol on a "
                    "local virtual link, and serve that link's HCI on a TCP port: then run "
                    "'emg-pipeline stream PROFILE --emulator 127.0.0.1:PORT'. The board "
                    "streams synthetic sEMG with known twitches and spasms, or a recording. "
                    "Ctrl-C stops it.")
    p.add_argument("profile", metavar="PROFILE", help="firmware profile name or .toml path")
    p.add_argument("--port", type=port, default=DEFAULT_PORT, metavar="N",
                   help=f"TCP port of the HCI socket (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--loss", type=probability, default=0.0, metavar="P",
                   help="probability that a packet is lost (default 0)")
    p.add_argument("--malformed", type=probability, default=0.0, metavar="P",
                   help="probability that a packet is sent corrupted (default 0)")
    p.add_argument("--burst", type=probability, default=0.0, metavar="P",
                   help="probability that a burst of lost packets starts at a packet (default 0)")
    p.add_argument("--burst-length", type=whole_at_least(1, "packets"), default=5, metavar="N",
                   help="packets lost in each burst (default 5)")
    p.add_argument("--duplicate", type=probability, default=0.0, metavar="P",
                   help="probability that a packet is sent twice (default 0)")
    p.add_argument("--reorder", type=probability, default=0.0, metavar="P",
                   help="probability that a packet is swapped with the next one (default 0)")
    p.add_argument("--rate", type=positive, default=1.0, metavar="K",
                   help="the board's clock runs K times its nominal rate (default 1)")
    p.add_argument("--stall-every", type=positive, default=None, metavar="S",
                   help="stay connected but send nothing for --stall seconds every S seconds")
    p.add_argument("--stall", type=positive, default=5.0, metavar="S",
                   help="length of each stall (default 5 s; a reconnect ends it)")
    p.add_argument("--disconnect-every", type=positive, default=None, metavar="S",
                   help="drop the link after every S seconds of streaming (6: 10 a minute)")
    p.add_argument("--source", default="synthetic", metavar="synthetic|RECORDING",
                   help="what the board measures: 'synthetic' (default) or a recording file")
    p.add_argument("--firmware", type=int, choices=(2, 3), default=None, metavar="{2,3}",
                   help="Ganglion only: firmware 2 (raw packet + 19-bit deltas) or 3 (18-bit "
                        "values, the default); the Software Revision read reports it")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic signal and faults")
    p.add_argument("--speed", type=positive, default=1.0, metavar="X",
                   help="pace the board X times faster than real time (default 1)")
    p.add_argument("--duration", type=positive, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")
    p.set_defaults(func=_cmd_emulate)


# ------------------------------------------------------------------------------ helpers


async def _open_central(endpoint: tuple[str, int]):
    try:
        from emg_pipeline.sources.ble.bleak_bumble import BumbleCentral
    except ImportError as exc:  # pragma: no cover - bumble is in the emulator extra
        raise UsageError("--emulator needs bumble: pip install 'emg-pipeline[emulator]'") from exc
    host, port = endpoint
    try:
        return await BumbleCentral.open(f"tcp-client:{host}:{port}")
    except OSError as exc:
        raise UsageError(f"cannot reach an emulator at {host}:{port} ({exc.strerror or exc}); "
                         "start one with 'emg-pipeline emulate PROFILE --port "
                         f"{port}'") from None


def _bluetooth_errors() -> tuple[type[BaseException], ...]:
    from emg_pipeline.sources.ble import bluetooth_stack_errors

    return bluetooth_stack_errors()


@contextlib.contextmanager
def _system_bluetooth(used: bool) -> Iterator[None]:
    """Turn the OS errors of an unreachable Bluetooth stack (e.g. no BlueZ D-Bus) into one line."""
    try:
        yield
    except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
        if not used:
            raise
        raise BluetoothUnavailableError(
            f"cannot reach the system Bluetooth service ({exc.strerror or exc})") from None


def _run(coro_factory: Callable[[], object]) -> int:
    try:
        return int(asyncio.run(coro_factory()))  # type: ignore[arg-type]
    except _bluetooth_errors() as exc:
        raise BluetoothUnavailableError(" ".join(str(exc).split()) or type(exc).__name__) from None


# --------------------------------------------------------------------------------- scan


def _cmd_scan(args: argparse.Namespace) -> int:
    if args.lsl:
        if args.emulator:
            raise UsageError("--lsl lists LSL streams: it takes no --emulator")
        return _scan_lsl(args.timeout)
    return _run(lambda: _scan(args))


def _scan_lsl(timeout_s: float) -> int:
    from emg_pipeline.sources.lsl import list_streams

    found = list_streams(min(timeout_s, 10.0))
    if not found:
        print(f"no LSL stream found in {min(timeout_s, 10.0):g} s", file=sys.stderr)
        return 0
    rows = [(d.name, d.type, str(d.n_channels), "irregular" if d.fs <= 0 else f"{d.fs:g} Hz",
             d.channel_format, d.source_id or "-", d.hostname) for d in found]
    header = ("name", "type", "channels", "rate", "format", "source id", "host")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


async def _scan(args: argparse.Namespace) -> int:
    from emg_pipeline.sources.ble import bumble_backend, scan

    central = await _open_central(args.emulator) if args.emulator else None
    try:
        backend = bumble_backend(central) if central is not None else None
        with _system_bluetooth(central is None):
            found = await scan(args.timeout, backend=backend)
    finally:
        if central is not None:
            await central.close()
    if not found:
        print(f"no supported board found in {args.timeout:g} s", file=sys.stderr)
        return 0
    width = max(len(b.name or "?") for b in found)
    print(f"{'name':<{width}}  {'address':<17}  {'profile':<15}  rssi")
    for b in found:
        print(f"{b.name or '?':<{width}}  {b.address:<17}  {b.profile:<15}  {b.rssi} dBm")
    return 0


# ------------------------------------------------------------------------------- stream


def _lsl_query(args: argparse.Namespace) -> str | None:
    """The LSL stream asked for (``lsl:NAME`` or ``--lsl-source``), or None for a board."""
    given = args.profile
    if given is not None and given.lower().startswith("lsl:"):
        if args.lsl_source is not None:
            raise UsageError("give the LSL stream once: lsl:NAME or --lsl-source, not both")
        query = given
    elif args.lsl_source is not None:
        if given is not None:
            raise UsageError(f"--lsl-source reads an LSL stream: it takes no PROFILE ({given!r})")
        query = args.lsl_source
    elif given is None:
        raise UsageError("give a firmware PROFILE, lsl:NAME or --lsl-source NAME|type=EMG")
    else:
        return None
    for option in ("address", "emulator"):
        if getattr(args, option) is not None:
            raise UsageError(f"--{option} is for BLE boards, not LSL streams")
    from emg_pipeline.sources.lsl import parse_query

    prop, value = parse_query(query)
    return f"{prop}={value}"


def _cmd_stream(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    query = _lsl_query(args)
    if query is not None:
        return _run_lsl(lambda: _stream_lsl(args, query, settings))
    profile = load_profile(args.profile)
    sites = sites_from_args(args, profile.channels)  # bad site options fail before scanning
    return _run(lambda: _stream(args, profile, settings, sites))


async def _stream(args: argparse.Namespace, profile, settings, sites: SiteMap) -> int:
    from emg_pipeline.sources.ble import BleSource, bumble_backend

    err = sys.stderr
    quiet = args.quiet
    # every output is checked before the board is looked for
    sinks, recorder = stream_sinks(args, sites, title=profile.name,
                                   recording=f"BLE {profile.name}")
    central = await _open_central(args.emulator) if args.emulator else None
    backend = bumble_backend(central) if central is not None else None
    source = BleSource(profile, address=args.address, backend=backend,
                       scan_timeout_s=args.scan_timeout)
    pipe = Pipeline(profile.fs, profile.channels, unit=source.unit, settings=settings)
    limit = None if args.duration is None else round(args.duration * profile.fs)
    try:
        if quiet < 2:
            print(f"looking for a {profile.name} board ...", file=err)
        with _system_bluetooth(central is None):
            await source.connect()
        # the board streams from here: the wall-clock time of the first sample, to the
        # latency of the link, dates the recording and the episodes' onset_time
        started = datetime.now().astimezone()
        if recorder is not None:
            recorder.recording = f"BLE {profile.name} {source.address}"
        if quiet < 2:
            variant = f", firmware {source.variant}" if source.variant else ""
            print(f"streaming from {source.name or '?'} ({source.address}{variant}, "
                  f"MTU {source.mtu}) at {profile.fs:g} Hz; Ctrl-C stops", file=err)
            announce_lsl(sinks, err)
        info = StreamInfo.of(pipe, title=profile.name, start_time=started)
        summary = await run_async(source, pipe, sinks, info=info, limit_samples=limit,
                                  stats=lambda: dataclasses.asdict(source.stats))
    finally:
        await source.close()
        if central is not None:
            await central.close()
    if summary.interrupted and quiet < 2:
        print(f"emg-pipeline: interrupted at {summary.duration_s:.1f} s", file=err)
    if recorder is not None and recorder.writer is not None and quiet < 2:
        writer = recorder.writer
        print(f"recorded {writer.n_samples / writer.fs:.1f} s to {writer.path} "
              f"({int(writer.missing.max())} lost samples written as 0)", file=err)
    if quiet < 2:
        _report_chain(source, err)
        report_lsl(sinks, err)
    return 130 if summary.interrupted else 0


def _run_lsl(coro_factory: Callable[[], object]) -> int:
    return int(asyncio.run(coro_factory()))  # type: ignore[arg-type]


async def _stream_lsl(args: argparse.Namespace, query: str, settings) -> int:
    from emg_pipeline.sinks._output import probe_output
    from emg_pipeline.sinks.recording import probe_recording
    from emg_pipeline.sources.lsl import LslSource

    err = sys.stderr
    quiet = args.quiet
    # the outputs are checked before the stream is looked for (its channels come later)
    if args.record is not None:
        probe_recording(args.record, "--record")
    if args.out not in (None, "-"):
        probe_output(args.out, "--out")
    source = LslSource(query, resolve_timeout_s=args.scan_timeout)
    try:
        if quiet < 2:
            print(f"looking for the LSL stream {query} ...", file=err)
        await source.connect()
        started = datetime.now().astimezone()
        sites = sites_from_args(args, source.channels)
        desc = source.description
        assert desc is not None
        sinks, recorder = stream_sinks(args, sites, title=desc.name,
                                       recording=f"LSL {desc.name}")
        pipe = Pipeline(source.fs, source.channels, unit=source.unit, settings=settings)
        limit = None if args.duration is None else round(args.duration * source.fs)
        if quiet < 2:
            print(f"streaming from LSL '{desc.name}' ({desc.type or 'no type'}, "
                  f"{desc.n_channels} channels at {desc.fs:g} Hz, {desc.channel_format}, "
                  f"{source.unit}; host {desc.hostname or '?'}); Ctrl-C stops", file=err)
            announce_lsl(sinks, err)
        info = StreamInfo.of(pipe, title=desc.name, start_time=started)
        summary = await run_async(source, pipe, sinks, info=info, limit_samples=limit,
                                  stats=lambda: dataclasses.asdict(source.stats))
    finally:
        await source.close()
    if summary.interrupted and quiet < 2:
        print(f"emg-pipeline: interrupted at {summary.duration_s:.1f} s", file=err)
    if quiet < 2:
        s = source.stats
        share = (f" ({100 * s.lost_samples / (s.samples + s.lost_samples):.2f} %)"
                 if s.samples + s.lost_samples else "")
        print(f"LSL: {s.samples} samples received, {s.lost_samples} lost{share} in "
              f"{s.loss_events} gaps (from the timestamps), {s.reconnects} reconnects", file=err)
        if recorder is not None and recorder.writer is not None:
            writer = recorder.writer
            print(f"recorded {writer.n_samples / writer.fs:.1f} s to {writer.path} "
                  f"({int(writer.missing.max())} lost samples written as 0)", file=err)
        report_lsl(sinks, err)
    return 130 if summary.interrupted else 0


def _report_chain(source, err: TextIO) -> None:
    s = source.stats
    if s.chain_breaks:
        print(f"delta chain broken {s.chain_breaks} times by lost packets: {s.unanchored_samples} "
              "samples kept with an unknown offset until the next uncompressed packet "
              "(the band-pass removes it)", file=err)


# ------------------------------------------------------------------------------ emulate


def _cmd_emulate(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    if args.firmware is not None and profile.decoder != "ganglion":
        raise UsageError(f"--firmware: only the Ganglion has firmware variants, not "
                         f"{profile.name!r}")
    if args.source != "synthetic" and not Path(args.source).is_file():
        raise UsageError(f"--source: no such recording: {args.source}")
    return _run(lambda: _emulate(args, profile))


async def _emulate(args: argparse.Namespace, profile) -> int:
    try:
        from emg_pipeline.emulation import BoardStream, board_signal
        from emg_pipeline.emulation.air import VirtualAir
        from emg_pipeline.emulation.peripheral import EmulatedBoard
    except ImportError as exc:  # pragma: no cover - bumble is in the emulator extra
        raise UsageError("emulate needs bumble: pip install 'emg-pipeline[emulator]'") from exc
    err = sys.stderr
    rng = np.random.default_rng(args.seed)
    source = None if args.source == "synthetic" else args.source
    signal = board_signal(profile, rng, duration_s=300.0, source=source)
    stream = BoardStream(profile, signal, rng, loss=args.loss, malformed=args.malformed,
                         firmware=args.firmware, burst=args.burst,
                         burst_length=args.burst_length, duplicate=args.duplicate,
                         reorder=args.reorder, stall_every_s=args.stall_every,
                         stall_s=args.stall)
    air = VirtualAir()
    try:
        await air.serve_hci(args.host, args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port} "
                         f"({exc.strerror or exc})") from None
    board = EmulatedBoard(air.device(profile.name), stream, speed=args.speed,
                          disconnect_every_s=args.disconnect_every, rate=args.rate)
    status = 0
    try:
        await board.start()
        print(f"emulating {profile.name} as '{board.name}' ({board.address}); HCI socket on "
              f"{args.host}:{args.port}", file=err)
        print(f"connect with: emg-pipeline stream {profile.name} --emulator "
              f"{args.host}:{args.port}   (Ctrl-C stops)", file=err)
        sys.stderr.flush()
        try:
            if args.duration is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(args.duration)
        except asyncio.CancelledError:   # Ctrl-C: the normal way to stop
            status = 0
    finally:
        await board.close()
        await air.close()
    f = stream.faults
    print(f"sent {f.packets_sent} packets, dropped {f.packets_dropped} ({f.bursts} bursts), "
          f"corrupted {f.packets_malformed}, duplicated {f.packets_duplicated}, reordered "
          f"{f.packets_reordered}, withheld {f.packets_stalled} ({f.stalls} stalls); "
          f"{board.state.connections} connection(s), {board.state.forced_disconnects} forced "
          "disconnect(s)", file=err)
    return status
