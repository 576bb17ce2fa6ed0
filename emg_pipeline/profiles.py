"""Firmware profiles: what a BLE board is, as data.

A firmware profile is one TOML file in ``firmware_profiles/`` that tells the
acquisition layer how to find a board, which characteristics to use, which
bytes to write, and tells the decoders (:mod:`emg_pipeline.decode`) how to turn
its notifications into samples. Users add a board by writing a file, not code.

Schema (version 1)
------------------
Top level (all required unless marked optional):

``schema_version``
    ``1``.
``name``
    Profile name; must equal the file name without ``.toml``.
``description``
    One line of prose.
``decoder``
    ``"layout"`` (declarative, needs ``[layout]``) or the name of a built-in
    decoder for packets that cannot be described declaratively: see
    :data:`DECODER_NAMES`.
``fs``
    Sampling rate in Hz (per channel).
``channels``
    Channel names, in packet order.
``mtu``
    ATT MTU to request; notification payloads are at most ``mtu - 3`` bytes.
``params`` (optional table)
    Decoder parameters, checked against :data:`DECODER_PARAMS`.

Tables:

``[scan]``
    ``service_uuids`` and/or ``name_prefixes`` (at least one non-empty).
``[gatt]``
    ``service`` (optional), ``notify`` (list, ≥ 1), ``command`` (optional),
    ``write_with_response`` (bool).
``[commands]`` (optional)
    Hex byte strings (spaces allowed, ``""`` = nothing to send): ``start``,
    ``stop``, ``keep_awake``; ``setup`` is a list sent in order before
    ``start``; ``keep_awake_interval_s`` (0 = send once after connecting).
``[[reads]]`` (optional)
    ``name`` and ``uuid`` of characteristics to read after connecting.
``[format]``
    ``bits`` (sample width), ``signed``, ``endianness`` (``"little"``/``"big"``),
    ``samples_per_packet`` (samples per channel in one notification).
``[counter]`` (optional: absent means the board has no loss counter)
    ``unit`` (``"packet"``/``"sample"``), ``modulus`` (wrap), ``increment``
    (ticks per packet, or per sample when ``unit = "sample"``), and for the
    ``layout`` decoder ``offset`` (byte), ``bits`` and ``endianness``.
``[scale]``
    ``uv_per_count`` (float, or ``"unitless"``) and ``zero`` (counts subtracted
    before scaling; only with a float scale).
``[layout]`` (only with ``decoder = "layout"``)
    ``header_bytes``, ``record_bytes`` (one sample of every channel, plus any
    per-sample counter), ``sample_offset`` (of channel 1 in a record),
    ``min_records`` (fewer records than ``samples_per_packet`` allowed),
    ``trailer_bytes`` (allowed extra bytes at the end, ignored) and
    ``other_packet_bytes`` (lengths of non-EMG packets, reported as such).
``[timing]`` (optional)
    ``connect_settle_s``, ``stop_settle_s``: waits the acquisition layer keeps.
``[variant_select]`` and ``[[variants]]`` (optional)
    Firmware variants chosen at connect time from a ``[[reads]]`` value:
    ``variant_select.read`` names the read, ``variant_select.default`` the
    fallback; each variant has ``name``, ``match_prefix`` (ASCII prefix of the
    read value), optional ``description`` and ``params`` merged over the
    top-level ``params``.

Connect sequence the profile assumes: connect, request ``mtu``, wait
``connect_settle_s``, do the ``reads`` (pick the variant), write ``keep_awake``,
the ``setup`` commands, subscribe to every ``notify`` characteristic, write
``start``. Stop: write ``stop``, wait ``stop_settle_s``, unsubscribe.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal, cast

from emg_pipeline.errors import ProfileError

__all__ = [
    "DECODER_NAMES",
    "DECODER_PARAMS",
    "PROFILES_DIR",
    "SCHEMA_VERSION",
    "Commands",
    "CounterSpec",
    "FirmwareProfile",
    "GattSpec",
    "Layout",
    "ReadSpec",
    "SampleFormat",
    "Scale",
    "ScanFilter",
    "Timing",
    "Variant",
    "VariantSelect",
    "list_profiles",
    "load_profile",
    "normalize_uuid",
    "profile_from_dict",
]

#: Folder of the bundled profiles (at the repository root).
PROFILES_DIR = Path(__file__).resolve().parents[1] / "firmware_profiles"

#: The only schema version this module reads.
SCHEMA_VERSION = 1

ParamValue = int | float | str | bool
Endianness = Literal["little", "big"]
CounterUnit = Literal["packet", "sample"]

#: Parameters each decoder accepts: name -> (type, allowed values or None).
DECODER_PARAMS: Mapping[str, Mapping[str, tuple[type, frozenset[ParamValue] | None]]] = (
    MappingProxyType(
        {
            "layout": MappingProxyType({}),
            "ganglion": MappingProxyType({"firmware": (int, frozenset({2, 3}))}),
            "myo": MappingProxyType({}),
            "gforce": MappingProxyType({}),
            "bitalino": MappingProxyType({}),
            "ascii": MappingProxyType({}),
        }
    )
)

#: Names accepted for ``decoder``.
DECODER_NAMES: frozenset[str] = frozenset(DECODER_PARAMS)

_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_UUID128 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_UUID_SHORT = re.compile(r"^(?:0x)?([0-9a-f]{4}|[0-9a-f]{8})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HEX_BODY = re.compile(r"^[0-9a-f]*$")


def normalize_uuid(text: str) -> str:
    """Return the lowercase 128-bit form of a UUID.

    16- and 32-bit short forms are expanded with the Bluetooth base UUID.

    Parameters
    ----------
    text : str
        ``"fe84"``, ``"0x2a28"``, ``"0000fe84"`` or a full 8-4-4-4-12 UUID.

    Returns
    -------
    str
        The full UUID in lowercase.

    Raises
    ------
    ValueError
        If ``text`` is not a UUID.

    Examples
    --------
    >>> normalize_uuid("2A28")
    '00002a28-0000-1000-8000-00805f9b34fb'
    """
    low = text.strip().lower()
    if _UUID128.match(low):
        return low
    short = _UUID_SHORT.match(low)
    if short:
        return short.group(1).rjust(8, "0") + _BASE_UUID_SUFFIX
    raise ValueError(f"not a UUID: {text!r}")


# ----------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class ScanFilter:
    """How to recognise the board while scanning (a match on any entry is enough)."""

    service_uuids: tuple[str, ...] = ()
    name_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class GattSpec:
    """Characteristics used once connected (UUIDs in full lowercase form)."""

    notify: tuple[str, ...]
    service: str | None = None
    command: str | None = None
    write_with_response: bool = False


@dataclass(frozen=True)
class Commands:
    """Byte sequences written to the command characteristic."""

    start: bytes = b""
    stop: bytes = b""
    keep_awake: bytes = b""
    setup: tuple[bytes, ...] = ()
    keep_awake_interval_s: float = 0.0


@dataclass(frozen=True)
class ReadSpec:
    """A characteristic read after connecting (e.g. a firmware revision)."""

    name: str
    uuid: str


@dataclass(frozen=True)
class SampleFormat:
    """Width and layout of one sample value."""

    bits: int
    signed: bool
    endianness: Endianness
    samples_per_packet: int

    @property
    def bytes_per_sample(self) -> int:
        """Whole bytes needed to hold one value."""
        return (self.bits + 7) // 8


@dataclass(frozen=True)
class CounterSpec:
    """The board's loss counter.

    ``increment`` is in counter ticks per packet (``unit == "packet"``) or per
    sample (``unit == "sample"``); the counter wraps at ``modulus``. ``offset``,
    ``bits`` and ``endianness`` locate it in the packet for the layout decoder.
    """

    unit: CounterUnit
    modulus: int
    increment: int = 1
    offset: int | None = None
    bits: int | None = None
    endianness: Endianness = "little"


@dataclass(frozen=True)
class Scale:
    """Conversion from counts to µV: ``(counts - zero) * uv_per_count``.

    ``uv_per_count is None`` means the board is unitless: samples stay counts.
    """

    uv_per_count: float | None
    zero: float = 0.0

    @property
    def calibrated(self) -> bool:
        """Whether samples are converted to µV."""
        return self.uv_per_count is not None


@dataclass(frozen=True)
class Layout:
    """Declarative packet layout for the ``layout`` decoder.

    A packet is ``header_bytes``, then ``n`` records of ``record_bytes`` each
    (``min_records <= n <= samples_per_packet``), then one of ``trailer_bytes``.
    Channel values sit at ``sample_offset`` inside each record.
    """

    header_bytes: int
    record_bytes: int
    sample_offset: int
    min_records: int
    trailer_bytes: tuple[int, ...] = (0,)
    other_packet_bytes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Timing:
    """Waits the acquisition layer keeps, in seconds."""

    connect_settle_s: float = 0.0
    stop_settle_s: float = 0.0


@dataclass(frozen=True)
class Variant:
    """A firmware variant: decoder parameters chosen from a read value."""

    name: str
    match_prefix: str
    description: str = ""
    params: Mapping[str, ParamValue] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )


@dataclass(frozen=True)
class VariantSelect:
    """Which read chooses the variant, and the fallback variant."""

    read: str
    default: str


@dataclass(frozen=True)
class FirmwareProfile:
    """A validated firmware profile.

    Build one with :func:`load_profile`; the fields mirror the TOML schema
    described in the module docstring. Instances are immutable.

    Examples
    --------
    >>> p = load_profile("ganglion")
    >>> p.fs, p.n_channels, p.gatt.command is not None
    (200.0, 4, True)
    """

    name: str
    description: str
    decoder: str
    fs: float
    channels: tuple[str, ...]
    mtu: int
    scan: ScanFilter
    gatt: GattSpec
    format: SampleFormat
    scale: Scale
    commands: Commands = Commands()
    reads: tuple[ReadSpec, ...] = ()
    counter: CounterSpec | None = None
    layout: Layout | None = None
    timing: Timing = Timing()
    params: Mapping[str, ParamValue] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    variants: tuple[Variant, ...] = ()
    variant_select: VariantSelect | None = None
    variant: str | None = None
    source: Path | None = field(default=None, compare=False)

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def max_payload(self) -> int:
        """Largest notification payload the requested MTU allows (``mtu - 3``)."""
        return self.mtu - 3

    @property
    def packets_per_second(self) -> float:
        """Nominal notification rate (``fs / samples_per_packet``)."""
        return self.fs / self.format.samples_per_packet

    def select_variant(self, read_values: Mapping[str, bytes | str]) -> str | None:
        """Choose a variant from the values read at connect time.

        Parameters
        ----------
        read_values : mapping
            Read name (as in ``[[reads]]``) to the raw value read.

        Returns
        -------
        str or None
            The first variant (in file order) whose ``match_prefix`` starts the
            read value, else the default; ``None`` when the profile has no
            variants.

        Examples
        --------
        >>> p = load_profile("ganglion")
        >>> p.select_variant({"software_revision": b"3.0.2"})
        'fw3'
        >>> p.select_variant({})
        'fw2'
        """
        if self.variant_select is None:
            return None
        raw = read_values.get(self.variant_select.read)
        if raw is not None:
            text = raw.decode("ascii", "replace") if isinstance(raw, bytes | bytearray) else raw
            text = text.strip("\x00 \t\r\n")
            for v in self.variants:
                if v.match_prefix and text.startswith(v.match_prefix):
                    return v.name
        return self.variant_select.default

    def with_variant(self, name: str | None = None) -> FirmwareProfile:
        """Return the profile with a variant's parameters merged in.

        Parameters
        ----------
        name : str, optional
            Variant name; the default variant when omitted.

        Returns
        -------
        FirmwareProfile
            ``self`` when the profile has no variants, else a copy whose
            ``params`` include the variant's and whose ``variant`` is set.

        Raises
        ------
        ProfileError
            If the variant does not exist.
        """
        if self.variant_select is None:
            if name is not None:
                raise ProfileError(self.name, f"variant {name!r} requested but none defined")
            return self
        chosen = self.variant_select.default if name is None else name
        for v in self.variants:
            if v.name == chosen:
                merged = MappingProxyType({**self.params, **v.params})
                return replace(self, params=merged, variant=v.name)
        known = ", ".join(v.name for v in self.variants)
        raise ProfileError(self.name, f"no variant {chosen!r} (known: {known})")


# ----------------------------------------------------------------------------- reading


class _Table:
    """A TOML table being read: typed getters, dotted field paths, unknown-key check."""

    def __init__(self, label: str, data: Mapping[str, object], where: str = "") -> None:
        self.label = label
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, reason: str) -> ProfileError:
        return ProfileError(self.label, f"field {self.path(key)!r}: {reason}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, *, required: bool) -> object:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise ProfileError(self.label, f"missing field {self.path(key)!r}")
            return None
        return self.data[key]

    def string(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self.raw(key, required=required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_type_name(value)}")
        return value

    def integer(
        self, key: str, *, required: bool = True, default: int = 0, minimum: int | None = None
    ) -> int:
        value = self.raw(key, required=required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_type_name(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {value}")
        return value

    def number(
        self, key: str, *, required: bool = True, default: float = 0.0, positive: bool = False
    ) -> float:
        value = self.raw(key, required=required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, got {_type_name(value)}")
        out = float(value)
        if not math.isfinite(out):
            raise self.fail(key, f"must be finite, got {value!r}")
        if positive and out <= 0:
            raise self.fail(key, f"must be > 0, got {value!r}")
        if not positive and out < 0:
            raise self.fail(key, f"must be >= 0, got {value!r}")
        return out

    def boolean(self, key: str, *, required: bool = True, default: bool = False) -> bool:
        value = self.raw(key, required=required)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_type_name(value)}")
        return value

    def choice(self, key: str, options: Sequence[str], *, required: bool = True,
               default: str = "") -> str:
        value = self.string(key, required=required, default=default)
        if value not in options:
            allowed = ", ".join(repr(o) for o in options)
            raise self.fail(key, f"expected one of {allowed}, got {value!r}")
        return value

    def items(self, key: str, *, required: bool = True) -> list[object]:
        value = self.raw(key, required=required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {_type_name(value)}")
        return value

    def strings(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.items(key, required=required)):
            if not isinstance(item, str):
                raise self.fail(f"{key}[{i}]", f"expected a string, got {_type_name(item)}")
            out.append(item)
        return tuple(out)

    def integers(self, key: str, *, required: bool = True, minimum: int = 0) -> tuple[int, ...]:
        out = []
        for i, item in enumerate(self.items(key, required=required)):
            if isinstance(item, bool) or not isinstance(item, int):
                raise self.fail(f"{key}[{i}]", f"expected an integer, got {_type_name(item)}")
            if item < minimum:
                raise self.fail(f"{key}[{i}]", f"must be >= {minimum}, got {item}")
            out.append(item)
        return tuple(out)

    def uuid(self, key: str, *, required: bool = True) -> str | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        return self._uuid_of(key, value)

    def uuids(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        return tuple(
            self._uuid_of(f"{key}[{i}]", item)
            for i, item in enumerate(self.items(key, required=required))
        )

    def _uuid_of(self, key: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a UUID string, got {_type_name(value)}")
        try:
            return normalize_uuid(value)
        except ValueError:
            raise self.fail(key, f"not a valid UUID: {value!r}") from None

    def hex_bytes(self, key: str, *, required: bool = False) -> bytes:
        value = self.raw(key, required=required)
        if value is None:
            return b""
        return self._hex_of(key, value)

    def hex_list(self, key: str) -> tuple[bytes, ...]:
        return tuple(
            self._hex_of(f"{key}[{i}]", item)
            for i, item in enumerate(self.items(key, required=False))
        )

    def _hex_of(self, key: str, value: object) -> bytes:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a hex string, got {_type_name(value)}")
        body = "".join(value.split()).lower()
        if not _HEX_BODY.match(body) or len(body) % 2:
            raise self.fail(key, f"not an even-length hex byte string: {value!r}")
        return bytes.fromhex(body)

    def table(self, key: str, *, required: bool = True) -> _Table | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {_type_name(value)}")
        return _Table(self.label, value, self.path(key))

    def tables(self, key: str) -> list[_Table]:
        out = []
        for i, item in enumerate(self.items(key, required=False)):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{i}]", f"expected a table, got {_type_name(item)}")
            out.append(_Table(self.label, item, f"{self.path(key)}[{i}]"))
        return out

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ProfileError(self.label, f"unknown field {self.path(unknown[0])!r}")


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _params(t: _Table, key: str, decoder: str) -> Mapping[str, ParamValue]:
    table = t.table(key, required=False)
    if table is None:
        return MappingProxyType({})
    spec = DECODER_PARAMS.get(decoder, {})
    out: dict[str, ParamValue] = {}
    for name, value in table.data.items():
        table.used.add(name)
        if name not in spec:
            raise table.fail(name, f"unknown parameter for decoder {decoder!r}")
        kind, allowed = spec[name]
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
            raise table.fail(name, f"expected {kind.__name__}, got {_type_name(value)}")
        if allowed is not None and value not in allowed:
            raise table.fail(name, f"expected one of {sorted(allowed)}, got {value!r}")
        out[name] = cast(ParamValue, value)
    return MappingProxyType(out)


def profile_from_dict(data: Mapping[str, object], label: str = "<dict>") -> FirmwareProfile:
    """Validate a parsed profile and build a :class:`FirmwareProfile`.

    Parameters
    ----------
    data : mapping
        The profile as parsed from TOML.
    label : str
        How errors name the profile (usually the file name).

    Returns
    -------
    FirmwareProfile

    Raises
    ------
    ProfileError
        On the first problem found, naming the field.
    """
    top = _Table(label, data)
    version = top.integer("schema_version")
    if version != SCHEMA_VERSION:
        raise top.fail("schema_version", f"expected {SCHEMA_VERSION}, got {version}")
    name = top.string("name")
    if not _NAME.match(name):
        raise top.fail("name", f"use lowercase letters, digits, '-' and '_', got {name!r}")
    description = top.string("description")
    decoder = top.string("decoder")
    if decoder not in DECODER_NAMES:
        known = ", ".join(sorted(DECODER_NAMES))
        raise top.fail("decoder", f"unknown decoder {decoder!r} (known: {known})")
    fs = top.number("fs", positive=True)
    channels = top.strings("channels")
    if not channels:
        raise top.fail("channels", "needs at least one channel")
    if len(set(channels)) != len(channels):
        raise top.fail("channels", "channel names must be unique")
    mtu = top.integer("mtu", minimum=23)
    if mtu > 517:
        raise top.fail("mtu", f"ATT MTU is at most 517, got {mtu}")
    params = _params(top, "params", decoder)

    scan = _scan(top)
    gatt = _gatt(top)
    commands = _commands(top, gatt)
    reads = _reads(top)
    fmt = _format(top)
    counter = _counter(top, decoder)
    scale = _scale(top)
    layout = _layout(top, decoder, fmt, len(channels))
    timing = _timing(top)
    variant_select, variants = _variants(top, decoder, reads)
    top.done()

    profile = FirmwareProfile(
        name=name, description=description, decoder=decoder, fs=fs, channels=channels,
        mtu=mtu, scan=scan, gatt=gatt, format=fmt, scale=scale, commands=commands,
        reads=reads, counter=counter, layout=layout, timing=timing, params=params,
        variants=variants, variant_select=variant_select,
    )
    _check_decoder(profile, label)
    for v in variants:
        _check_decoder(profile.with_variant(v.name), label)
    return profile


def _scan(top: _Table) -> ScanFilter:
    t = _required(top.table("scan"))
    services = t.uuids("service_uuids", required=False)
    prefixes = t.strings("name_prefixes", required=False)
    if not services and not prefixes:
        raise t.fail("service_uuids", "give service_uuids and/or name_prefixes")
    t.done()
    return ScanFilter(service_uuids=services, name_prefixes=prefixes)


def _required(t: _Table | None) -> _Table:
    """Narrow a table fetched with ``required=True`` (the getter raised if it was missing)."""
    if t is None:  # pragma: no cover - required tables raise before this
        raise ProfileError("<profile>", "internal: missing required table")
    return t


def _gatt(top: _Table) -> GattSpec:
    t = _required(top.table("gatt"))
    service = t.uuid("service", required=False)
    notify = t.uuids("notify")
    if not notify:
        raise t.fail("notify", "needs at least one characteristic")
    if len(set(notify)) != len(notify):
        raise t.fail("notify", "characteristics must be unique")
    command = t.uuid("command", required=False)
    wwr = t.boolean("write_with_response", required=False)
    t.done()
    return GattSpec(notify=notify, service=service, command=command, write_with_response=wwr)


def _commands(top: _Table, gatt: GattSpec) -> Commands:
    t = top.table("commands", required=False)
    if t is None:
        return Commands()
    cmds = Commands(
        start=t.hex_bytes("start"),
        stop=t.hex_bytes("stop"),
        keep_awake=t.hex_bytes("keep_awake"),
        setup=t.hex_list("setup"),
        keep_awake_interval_s=t.number("keep_awake_interval_s", required=False),
    )
    t.done()
    if gatt.command is None and (cmds.start or cmds.stop or cmds.keep_awake or cmds.setup):
        raise ProfileError(t.label, "field 'commands': commands given but gatt.command is not set")
    if cmds.keep_awake_interval_s > 0 and not cmds.keep_awake:
        raise t.fail("keep_awake_interval_s", "set without a keep_awake command")
    return cmds


def _reads(top: _Table) -> tuple[ReadSpec, ...]:
    out = []
    for t in top.tables("reads"):
        name = t.string("name")
        uuid = t.uuid("uuid")
        t.done()
        if uuid is None:  # pragma: no cover - required
            raise t.fail("uuid", "missing")
        out.append(ReadSpec(name=name, uuid=uuid))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise top.fail("reads", "read names must be unique")
    return tuple(out)


def _format(top: _Table) -> SampleFormat:
    t = _required(top.table("format"))
    bits = t.integer("bits", minimum=1)
    if bits > 32:
        raise t.fail("bits", f"at most 32, got {bits}")
    fmt = SampleFormat(
        bits=bits,
        signed=t.boolean("signed"),
        endianness=_endianness(t),
        samples_per_packet=t.integer("samples_per_packet", minimum=1),
    )
    t.done()
    return fmt


def _endianness(t: _Table) -> Endianness:
    return cast(Endianness, t.choice("endianness", ("little", "big"), required=False,
                                     default="little"))


def _counter(top: _Table, decoder: str) -> CounterSpec | None:
    t = top.table("counter", required=False)
    if t is None:
        return None
    unit = cast(CounterUnit, t.choice("unit", ("packet", "sample")))
    modulus = t.integer("modulus", minimum=2)
    increment = t.integer("increment", required=False, default=1, minimum=1)
    offset = t.integer("offset", minimum=0) if t.has("offset") else None
    bits = t.integer("bits", minimum=1) if t.has("bits") else None
    endian = _endianness(t)
    t.done()
    if bits is not None:
        if bits not in (8, 16, 24, 32):
            raise t.fail("bits", f"expected 8, 16, 24 or 32, got {bits}")
        if modulus > 1 << bits:
            raise t.fail("modulus", f"{modulus} does not fit in {bits} bits")
    if decoder == "layout" and (offset is None or bits is None):
        raise t.fail("offset" if offset is None else "bits",
                     "required for decoder 'layout' (where the counter sits)")
    if increment >= modulus:
        raise t.fail("increment", f"must be smaller than modulus {modulus}")
    return CounterSpec(unit=unit, modulus=modulus, increment=increment, offset=offset, bits=bits,
                       endianness=endian)


def _scale(top: _Table) -> Scale:
    t = _required(top.table("scale"))
    raw = t.raw("uv_per_count", required=True)
    if raw == "unitless":
        uv = None
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        uv = t.number("uv_per_count", positive=True)
    else:
        raise t.fail("uv_per_count", f"expected a positive number or 'unitless', got {raw!r}")
    zero_raw = t.raw("zero", required=False)
    if zero_raw is not None and (isinstance(zero_raw, bool)
                                 or not isinstance(zero_raw, int | float)
                                 or not math.isfinite(zero_raw)):
        raise t.fail("zero", f"expected a number, got {_type_name(zero_raw)}")
    zero = 0.0 if zero_raw is None else float(zero_raw)
    t.done()
    if uv is None and zero != 0:
        raise t.fail("zero", "only meaningful with a numeric uv_per_count")
    return Scale(uv_per_count=uv, zero=zero)


def _layout(top: _Table, decoder: str, fmt: SampleFormat, n_channels: int) -> Layout | None:
    t = top.table("layout", required=False)
    if t is None:
        if decoder == "layout":
            raise ProfileError(top.label, "missing field 'layout' (required for decoder 'layout')")
        return None
    if decoder != "layout":
        raise ProfileError(t.label, f"field 'layout': only used with decoder 'layout', "
                                    f"not {decoder!r}")
    values_bytes = n_channels * fmt.bytes_per_sample
    layout = Layout(
        header_bytes=t.integer("header_bytes", required=False, minimum=0),
        record_bytes=t.integer("record_bytes", required=False, default=values_bytes, minimum=1),
        sample_offset=t.integer("sample_offset", required=False, minimum=0),
        min_records=t.integer("min_records", required=False,
                              default=fmt.samples_per_packet, minimum=1),
        trailer_bytes=t.integers("trailer_bytes", required=False) or (0,),
        other_packet_bytes=t.integers("other_packet_bytes", required=False, minimum=1),
    )
    t.done()
    if fmt.bits not in (8, 16, 24, 32):
        raise ProfileError(t.label, f"field 'format.bits': the layout decoder reads 8, 16, 24 or "
                                    f"32-bit values, got {fmt.bits}")
    if layout.sample_offset + values_bytes > layout.record_bytes:
        raise t.fail("record_bytes", f"{layout.record_bytes} bytes cannot hold "
                                     f"{n_channels} x {fmt.bytes_per_sample}-byte values at "
                                     f"offset {layout.sample_offset}")
    if layout.min_records > fmt.samples_per_packet:
        raise t.fail("min_records", f"{layout.min_records} > format.samples_per_packet "
                                    f"{fmt.samples_per_packet}")
    return layout


def _timing(top: _Table) -> Timing:
    t = top.table("timing", required=False)
    if t is None:
        return Timing()
    timing = Timing(connect_settle_s=t.number("connect_settle_s", required=False),
                    stop_settle_s=t.number("stop_settle_s", required=False))
    t.done()
    return timing


def _variants(top: _Table, decoder: str,
              reads: tuple[ReadSpec, ...]) -> tuple[VariantSelect | None, tuple[Variant, ...]]:
    sel_t = top.table("variant_select", required=False)
    var_ts = top.tables("variants")
    if sel_t is None:
        if var_ts:
            raise ProfileError(top.label, "field 'variants': needs a [variant_select] table")
        return None, ()
    select = VariantSelect(read=sel_t.string("read"), default=sel_t.string("default"))
    sel_t.done()
    if select.read not in {r.name for r in reads}:
        raise sel_t.fail("read", f"no [[reads]] entry named {select.read!r}")
    variants = []
    for t in var_ts:
        variants.append(Variant(
            name=t.string("name"),
            match_prefix=t.string("match_prefix", required=False),
            description=t.string("description", required=False),
            params=_params(t, "params", decoder),
        ))
        t.done()
    names = [v.name for v in variants]
    if not variants:
        raise top.fail("variants", "[variant_select] given but no [[variants]]")
    if len(set(names)) != len(names):
        raise top.fail("variants", "variant names must be unique")
    if select.default not in names:
        raise sel_t.fail("default", f"no variant named {select.default!r}")
    return select, tuple(variants)


def _check_decoder(p: FirmwareProfile, label: str) -> None:
    """Decoder-specific consistency checks, including sizes against the MTU."""
    from emg_pipeline.decode.factory import check_profile

    # With variants, the base profile may leave parameters to each variant.
    if not p.variants or p.variant is not None:
        where = "params" if p.variant is None else f"variants.{p.variant}.params"
        for name in DECODER_PARAMS[p.decoder]:
            if name not in p.params:
                fieldname = f"{where}.{name}"
                raise ProfileError(label, f"field {fieldname!r}: required by decoder {p.decoder!r}")
    check_profile(p, label)


def load_profile(name_or_path: str | Path) -> FirmwareProfile:
    """Load and validate a firmware profile.

    Parameters
    ----------
    name_or_path : str or Path
        A bare profile name (``"ganglion"``), looked up in :data:`PROFILES_DIR`,
        or the path of a ``.toml`` file.

    Returns
    -------
    FirmwareProfile

    Raises
    ------
    ProfileError
        If the file is missing, is not TOML, or does not validate. The message
        names the file and the field.

    Examples
    --------
    >>> load_profile("myo").gatt.notify[0]
    'd5060105-a904-deb9-4748-2c7f4a124842'
    """
    path = _resolve(name_or_path)
    label = path.name
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ProfileError(str(name_or_path), f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(label, f"invalid TOML: {exc}") from None
    except OSError as exc:
        raise ProfileError(label, f"cannot read: {exc.strerror or exc}") from None
    profile = profile_from_dict(data, label)
    if profile.name != path.stem:
        raise ProfileError(label, f"field 'name': {profile.name!r} must match the file name "
                                  f"{path.stem!r}")
    return replace(profile, source=path)


def _resolve(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, Path):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        return Path(text)
    if not _NAME.match(text):
        raise ProfileError(text, "not a profile name (lowercase letters, digits, '-', '_')")
    path = PROFILES_DIR / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(list_profiles()) or "none"
        raise ProfileError(text, f"no bundled profile of that name (available: {known})")
    return path


def list_profiles() -> list[str]:
    """Names of the bundled profiles, sorted.

    Returns
    -------
    list of str

    Examples
    --------
    >>> "ganglion" in list_profiles()
    True
    """
    if not PROFILES_DIR.is_dir():
        return []
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))
