"""Semi-synthetic recordings: real rest and real contractions spliced, with exact truth.

None of the shared real recordings (``../shared/data``) carries scored events,
and a detector's output is no truth. This module cuts stretches of real EMG that
are clearly at rest or clearly active out of those recordings and splices them
into new recordings: the truth is where a contraction stretch was placed, exact
by construction, and the noise between contractions is the device's real noise.
The recordings are read at run time from a data folder (never copied into the
project) with the package's own readers
(:func:`emg_pipeline.sources.formats.read_recording`).

**Devices.** One recording is spliced from one device's stretches only, so its
sampling rate, gain, noise and converter are one device's. A device is one
recording set-up:

================= ============================================= ====== ======== ========
device            source (under the data folder)                fs     channels rule
================= ============================================= ====== ======== ========
``myo``           ``myo-armband-labelled/right_hand_12345-1/``  200    8        cue
                  ``1.txt`` ... ``7.txt`` (one session, int8)
``plux-biceps``   ``plux-biosignalsnotebooks/emg_bursts.h5``    1000   1        envelope
``plux-adductor`` ``plux-biosignalsnotebooks/``                 1000   1        envelope
                  ``emg_1000_hz_16_bits_solo.h5``
``bitalino``      ``bitalino-opensignals/SampleEMG.h5``         1000   1        envelope
``biosppy``       ``biosppy-examples/emg_1.txt``                1000   1        envelope
``openbci``       ``openbci-gui-samples/OpenBCI_GUI-v6-*.txt``  250    8        envelope
================= ============================================= ====== ======== ========

The two PLUX files are two devices (other sensors, muscles, noise floors). Not
used: the Myo rest file ``0.txt`` (rest with slight hand movements, not clean
rest), BioSPPy ``emg.txt`` (another set-up: a third of ``emg_1.txt``'s noise),
the trimmed OpenBCI copies (the same recording), the libEMG fixture (2.5 s) and
the PhysioNet needle EMG (not surface EMG, no rest).

**Preparation** (per source file and channel, offline, zero-phase): the slow
baseline is removed with a 2nd-order Butterworth high-pass at 5 Hz (two octaves
below the 20 Hz band edge, so the EMG band is untouched), so that splicing
stretches from different moments makes no step; the channel's median is added
back afterwards (the device's DC offset). OpenBCI only: its 60 Hz line and
120 Hz harmonic (95-100 % of the in-band power there) are notched out (zero
phase, Q 30), since splicing would break the line's phase at every joint,
which no real recording does. The stretch rules below use ``band``: the
prepared signal band-passed (4th order, 20 Hz to ``effective_band``'s upper
corner, zero phase) and ``env``: its centred 100 ms moving RMS.

**Stretch rules.**

- ``cue`` (Myo): the per-sample cue label alternates rest / gesture every
  5 s. The muscle answers 0.2 s before to 0.6 s after a gesture cue and relaxes
  within 1.1 s of a rest cue (cue-aligned mean envelope of files 1-7).
  Contraction candidates: gesture-cue periods from 1.0 s after their cue to
  0.5 s before the rest cue (about 3.5 s); rest candidates: rest-cue periods
  from 1.5 s after their cue to 1.0 s before the next gesture cue (about
  2.5 s), per channel.
- ``envelope`` (the others): per channel, ``floor`` = 10th percentile of
  ``env`` over the recording. Rest candidates: runs with ``env <= 2 floor``,
  0.25 s cut off each end, at least 0.5 s left. Contraction candidates: runs
  with ``env >= 6 floor``, 50 ms cut off each end, at least 0.1 s left. The
  thresholds are far apart, so nothing in the ambiguous band between them is
  used.
- Then, for every device alike, per channel: ``rest_rms`` = 25th percentile
  of the in-band RMS of the channel's rest candidates (the electrode's quiet
  rest; some Myo rest periods carry residual tone at 3-4x it). A rest
  candidate is kept when its RMS is within a factor 1.25 of ``rest_rms`` (so
  that the rest of one spliced channel is one homogeneous noise: at most
  1.6x, 4 dB, between its quietest and loudest pieces) and its ``env`` never
  exceeds 3 ``rest_rms`` (no burst inside); a contraction candidate is kept
  when its RMS is at least 3 ``rest_rms`` (so at least 2.4x any kept rest
  stretch). A sub-span of a contraction stretch is used only when it passes
  the same test.

**Splicing** (:func:`draw`, per channel independently, each channel from its
own electrode's stretches): rest for 2-8 s, then contraction and rest in turn
to the end. A rest interval lasts 0.8-1.5 s (three in ten) or 1-20 s
(log-uniform) and is filled with random pieces of the channel's rest stretches,
drawn with replacement. A contraction is a whole stretch (when its duration is
not within 0.5 s of ``spasm_min_s``), a twitch-like sub-span of 0.1-0.45 s, or,
from stretches long enough, a sustained sub-span of 3 s or more. Each joint is
an equal-power crossfade of 5-20 ms (sine/cosine amplitude ramps, i.e.
raised-cosine power ramps) placed on the rest side: the contraction's own
samples are never faded, the neighbouring source samples of a stretch fade in
or out over the rest. The samples are then put back on the device's converter
grid (its step and range). Truth: ``onset_s``/``offset_s`` = where the
contraction stretch was placed; ``label`` by
:func:`~emg_pipeline.labels.label_for`; ``pattern`` ``phasic`` under
``spasm_min_s``, else ``tonic``; ``snr_db`` = 20 log10 of the RMS of the
contraction over the RMS of the rest intervals on either side, both in the
band (20-450 Hz, clamped by :func:`~emg_pipeline.conditioning.filters.effective_band`)
of the spliced channel.

Examples
--------
>>> from pathlib import Path
>>> load_stretches(Path("/nonexistent"))
{}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal

from ..conditioning.filters import effective_band
from ..labels import DEFAULT_SPASM_MIN_S, label_for
from .formats import RecordingInfo, read_recording
from .synthetic import ARTEFACT_COLUMNS, TRUTH_COLUMNS, SyntheticRecording

__all__ = ["DEVICES", "Stretch", "Stretches", "draw", "load_stretches", "stretch_counts"]

#: the devices, in the order of the table of the module docstring
DEVICES: tuple[str, ...] = ("myo", "plux-biceps", "plux-adductor", "bitalino", "biosppy",
                            "openbci")

BASELINE_HP_HZ = 5.0
ENV_WINDOW_S = 0.100
PAD_S = 0.020                      # source context kept on each side of a stretch (crossfades)
CROSSFADE_S = (0.005, 0.020)
REST_LOW, REST_HIGH = 2.0, 6.0     # envelope rule: x floor
REST_CUT_S, REST_MIN_S = 0.25, 0.5
ACTIVE_CUT_S, ACTIVE_MIN_S = 0.05, 0.1
REST_LEVEL_PCT = 25               # rest_rms: this percentile of the rest candidates' RMS
REST_KEEP, REST_BURST, ACTIVE_KEEP = 1.25, 3.0, 3.0  # x the channel's rest_rms
MYO_ACTIVE_TRIM_S = (1.0, 0.5)     # after the gesture cue, before the rest cue
MYO_REST_TRIM_S = (1.5, 1.0)       # after the rest cue, before the gesture cue
TWITCH_S = (0.1, 0.45)
SUSTAINED_MIN_S = 3.0
MODES = (("twitch", 0.45), ("whole", 0.35), ("sustained", 0.20))


@dataclass(frozen=True)
class _Source:
    files: tuple[str, ...]
    rule: str                              # "cue" or "envelope"
    fs: float | None = None                # for files that state no rate
    lsb: float | None = None               # converter step, in the unit
    limits: tuple[float, float] | None = None
    notch_hz: tuple[float, ...] = ()


def _opensignals_lsb(vcc_v: float, gain: float, bits: int) -> float:
    return vcc_v * 1e6 / gain / 2**bits


_MYO = "myo-armband-labelled/right_hand_12345-1"
_SOURCES: dict[str, _Source] = {
    "myo": _Source(tuple(f"{_MYO}/{k}.txt" for k in range(1, 8)), "cue", fs=200.0, lsb=1.0,
                   limits=(-128.0, 127.0)),
    "plux-biceps": _Source(("plux-biosignalsnotebooks/emg_bursts.h5",), "envelope",
                           lsb=_opensignals_lsb(3.0, 1000.0, 16), limits=(-1500.0, 1500.0)),
    "plux-adductor": _Source(("plux-biosignalsnotebooks/emg_1000_hz_16_bits_solo.h5",),
                             "envelope", lsb=_opensignals_lsb(3.0, 1000.0, 16),
                             limits=(-1500.0, 1500.0)),
    "bitalino": _Source(("bitalino-opensignals/SampleEMG.h5",), "envelope",
                        lsb=_opensignals_lsb(3.3, 1009.0, 10), limits=(-1635.3, 1635.3)),
    "biosppy": _Source(("biosppy-examples/emg_1.txt",), "envelope", lsb=1.0,
                       limits=(0.0, 4095.0)),
    "openbci": _Source(("openbci-gui-samples/OpenBCI_GUI-v6-blinks-jawClench-alpha.txt",),
                       "envelope", lsb=None, limits=(-187500.0, 187500.0),
                       notch_hz=(60.0, 120.0)),
}


@dataclass(frozen=True, eq=False)
class Stretch:
    """One stretch of one channel of a real recording, clearly at rest or clearly active.

    Attributes
    ----------
    source : str
        ``folder/file`` under the data folder.
    channel : int
        Channel index in the device's channels.
    start_s : float
        Start of the stretch in the source recording, s.
    data : ndarray
        Prepared samples (baseline removed, zero mean), the stretch plus
        ``pad`` samples of source context on each side.
    band : ndarray
        The stretch (without context) band-passed, for RMS tests.
    pad : int
        Context samples on each side of ``data``.
    rms : float
        In-band RMS of the stretch.
    """

    source: str
    channel: int
    start_s: float
    data: np.ndarray
    band: np.ndarray
    pad: int
    rms: float

    @property
    def n(self) -> int:
        """Length of the stretch in samples (without context)."""
        return int(self.band.shape[0])


@dataclass(frozen=True, eq=False)
class Stretches:
    """The stretches of one device, per channel, and its converter.

    Attributes
    ----------
    device : str
        One of :data:`DEVICES`.
    rule : str
        ``cue`` or ``envelope`` (see the module docstring).
    fs : float
        Sampling rate, Hz.
    unit : str
        ``counts`` or ``uV``.
    channels : tuple of str
        Channel names (channels without kept rest stretches are left out).
    sources : tuple of str
        Files read.
    rest, contraction : tuple of tuple of Stretch
        Kept stretches, per channel.
    rest_rms : tuple of float
        Per channel: median in-band RMS of the rest candidates.
    dc : tuple of float
        Per channel: median of the raw samples (added back after splicing).
    grid : tuple of float
        Per channel: one raw sample value (anchors the converter grid).
    lsb : float or None
        Converter step in ``unit`` (None: not re-quantised).
    limits : (float, float) or None
        Converter range in ``unit``.
    """

    device: str
    rule: str
    fs: float
    unit: str
    channels: tuple[str, ...]
    sources: tuple[str, ...]
    rest: tuple[tuple[Stretch, ...], ...]
    contraction: tuple[tuple[Stretch, ...], ...]
    rest_rms: tuple[float, ...]
    dc: tuple[float, ...]
    grid: tuple[float, ...]
    lsb: float | None
    limits: tuple[float, float] | None


# ------------------------------------------------------------------------- loading


def _band_sos(fs: float) -> np.ndarray:
    lo, hi = effective_band(fs, 20.0, 450.0)
    return signal.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos")


def _prepare(x: np.ndarray, fs: float, notch_hz: tuple[float, ...]) -> np.ndarray:
    """Baseline removed (zero-phase high-pass) and, when asked, mains lines notched."""
    hp = signal.butter(2, BASELINE_HP_HZ, btype="highpass", fs=fs, output="sos")
    y = signal.sosfiltfilt(hp, x - np.median(x, axis=0), axis=0)
    for f0 in notch_hz:
        if f0 < 0.5 * fs:
            b, a = signal.iirnotch(f0, 30.0, fs)
            y = signal.filtfilt(b, a, y, axis=0)
    return y


def _moving_rms(y: np.ndarray, fs: float) -> np.ndarray:
    w = max(1, round(ENV_WINDOW_S * fs))
    k = np.ones(w) / w
    return np.sqrt(np.maximum(np.apply_along_axis(
        lambda v: np.convolve(v, k, mode="same"), 0, y * y), 0.0))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(),
                    strict=True))


def _shrink(runs: list[tuple[int, int]], cut: int, min_len: int, pad: int,
            n: int) -> list[tuple[int, int]]:
    out = []
    for a, b in runs:
        a, b = max(a + cut, pad), min(b - cut, n - pad)
        if b - a >= min_len:
            out.append((a, b))
    return out


def _candidates(rule: str, info: RecordingInfo, band_env: np.ndarray, fs: float, n: int, pad: int
                ) -> tuple[list[list[tuple[int, int]]], list[list[tuple[int, int]]]]:
    """Rest and contraction candidate spans (sample indices) per channel."""
    C = band_env.shape[1]
    if rule == "cue":
        ann = info.annotations
        rest_spans, active_spans = [], []
        for onset, dur, text in zip(ann["onset_s"], ann["duration_s"], ann["text"],
                                    strict=True):
            end = onset + dur
            if text == "label 0":
                a, b = onset + MYO_REST_TRIM_S[0], end - MYO_REST_TRIM_S[1]
                if b - a >= REST_MIN_S:
                    rest_spans.append((round(a * fs), round(b * fs)))
            else:
                a, b = onset + MYO_ACTIVE_TRIM_S[0], end - MYO_ACTIVE_TRIM_S[1]
                if b - a >= ACTIVE_MIN_S:
                    active_spans.append((round(a * fs), round(b * fs)))
        rest_spans = _shrink(rest_spans, 0, 1, pad, n)
        active_spans = _shrink(active_spans, 0, 1, pad, n)
        return [list(rest_spans) for _ in range(C)], [list(active_spans) for _ in range(C)]
    rest, active = [], []
    for c in range(C):
        env = band_env[:, c]
        floor = float(np.percentile(env, 10))
        rest.append(_shrink(_runs(env <= REST_LOW * floor), round(REST_CUT_S * fs),
                            round(REST_MIN_S * fs), pad, n))
        active.append(_shrink(_runs(env >= REST_HIGH * floor), round(ACTIVE_CUT_S * fs),
                              round(ACTIVE_MIN_S * fs), pad, n))
    return rest, active


def _rms(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(v * v))) if v.size else math.nan


def _frozen(v: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(v, dtype=np.float64)
    v.setflags(write=False)
    return v


def _load_device(data_dir: Path, device: str) -> Stretches | None:
    spec = _SOURCES[device]
    paths = [data_dir / f for f in spec.files]
    if not all(p.is_file() for p in paths):
        return None
    fs = unit = names = None
    cand_rest: list[list[tuple[Stretch, float]]] = []
    cand_active: list[list[Stretch]] = []
    raws = []
    for rel, path in zip(spec.files, paths, strict=True):
        x, info = read_recording(path, fs=spec.fs)
        if fs is None:
            fs, unit, names = float(info.fs), info.unit, tuple(info.channels)
            cand_rest = [[] for _ in names]
            cand_active = [[] for _ in names]
        raws.append(x)
        pad = max(1, math.ceil(PAD_S * fs))
        y = _prepare(x, fs, spec.notch_hz)
        band = signal.sosfiltfilt(_band_sos(fs), y, axis=0)
        env = _moving_rms(band, fs)
        rest_spans, active_spans = _candidates(spec.rule, info, env, fs, x.shape[0], pad)
        for c in range(len(names)):
            for (a, b), into in [(s, "rest") for s in rest_spans[c]] + \
                                [(s, "active") for s in active_spans[c]]:
                st = Stretch(rel, c, a / fs, _frozen(y[a - pad : b + pad, c]),
                             _frozen(band[a:b, c]), pad, _rms(band[a:b, c]))
                if into == "rest":
                    cand_rest[c].append((st, float(env[a:b, c].max())))
                else:
                    cand_active[c].append(st)
    raw = np.concatenate(raws)
    rest_out, active_out, rest_rms, dc, grid, keep = [], [], [], [], [], []
    for c in range(len(names)):
        if not cand_rest[c]:
            continue
        level = float(np.percentile([s.rms for s, _ in cand_rest[c]], REST_LEVEL_PCT))
        kept_rest = tuple(s for s, peak in cand_rest[c]
                          if level / REST_KEEP <= s.rms <= REST_KEEP * level
                          and peak <= REST_BURST * level)
        if not kept_rest:
            continue
        keep.append(c)
        rest_out.append(kept_rest)
        active_out.append(tuple(s for s in cand_active[c] if s.rms >= ACTIVE_KEEP * level))
        rest_rms.append(level)
        dc.append(float(np.median(raw[:, c])))
        grid.append(float(raw[0, c]))
    if not keep:
        return None
    return Stretches(device, spec.rule, float(fs), str(unit), tuple(names[c] for c in keep),
                     spec.files, tuple(rest_out), tuple(active_out), tuple(rest_rms),
                     tuple(dc), tuple(grid), spec.lsb, spec.limits)


_CACHE: dict[Path, dict[str, Stretches]] = {}


def load_stretches(data_dir: Path | str) -> dict[str, Stretches]:
    """The rest and contraction stretches of every device found under ``data_dir``.

    Cached per process and data folder. A device whose files are absent is left
    out; an absent folder gives an empty dict.

    Parameters
    ----------
    data_dir : Path or str
        The shared recordings folder (``../shared/data``).

    Returns
    -------
    dict of str to Stretches
        By device name (see :data:`DEVICES`), in that order.
    """
    root = Path(data_dir)
    if not root.is_dir():
        return {}
    key = root.resolve()
    if key not in _CACHE:
        found = {}
        for device in DEVICES:
            st = _load_device(root, device)
            if st is not None:
                found[device] = st
        _CACHE[key] = found
    return dict(_CACHE[key])


def stretch_counts(stretches: Stretches) -> dict[str, float]:
    """Numbers and total seconds of the kept rest and contraction stretches of a device."""
    rest = [s for ch in stretches.rest for s in ch]
    active = [s for ch in stretches.contraction for s in ch]
    return {"channels": len(stretches.channels), "rest": len(rest),
            "rest_s": sum(s.n for s in rest) / stretches.fs,
            "contraction": len(active),
            "contraction_s": sum(s.n for s in active) / stretches.fs,
            "channels_with_contractions": sum(1 for ch in stretches.contraction if ch)}


# ------------------------------------------------------------------------- splicing


@dataclass(frozen=True)
class _Piece:
    stretch: Stretch
    start: int          # in the stretch (without context)
    length: int
    active: bool


def _rest_interval(rng: np.random.Generator) -> float:
    if rng.random() < 0.3:
        return float(rng.uniform(0.8, 1.5))
    return float(math.exp(rng.uniform(math.log(1.0), math.log(20.0))))


def _rest_pieces(rng: np.random.Generator, rest: tuple[Stretch, ...], n: int,
                 fs: float) -> list[_Piece]:
    """Random pieces of rest stretches (with replacement) filling ``n`` samples."""
    min_piece = max(4, round(0.2 * fs))
    pieces: list[_Piece] = []
    left = n
    while left > 0:
        st = rest[int(rng.integers(len(rest)))]
        if left <= st.n:
            length = left
        else:
            length = min(st.n, left - min_piece)
        start = int(rng.integers(0, st.n - length + 1))
        pieces.append(_Piece(st, start, length, False))
        left -= length
    return pieces


def _contraction(rng: np.random.Generator, active: tuple[Stretch, ...], level: float,
                 fs: float, spasm_min_s: float, max_n: int) -> _Piece | None:
    """A contraction: a whole stretch or a twitch-like or sustained sub-span."""
    names = [m for m, _ in MODES]
    p = np.array([w for _, w in MODES])
    sustained_min = max(SUSTAINED_MIN_S, spasm_min_s + 0.5)
    twitch_max = min(TWITCH_S[1], max(TWITCH_S[0], spasm_min_s - 0.5))
    for _ in range(30):
        mode = names[int(rng.choice(len(names), p=p))]
        st = active[int(rng.integers(len(active)))]
        dur = st.n / fs
        if mode == "sustained":
            if dur < sustained_min:
                continue
            length = round(rng.uniform(sustained_min, dur) * fs)
        elif mode == "whole":
            if abs(dur - spasm_min_s) < 0.5:
                continue
            length = st.n
        else:
            hi = min(twitch_max, dur)
            length = round(rng.uniform(min(TWITCH_S[0], hi), hi) * fs)
        length = max(1, min(length, st.n))
        if length > max_n:
            continue
        start = int(rng.integers(0, st.n - length + 1))
        if _rms(st.band[start : start + length]) >= ACTIVE_KEEP * level:
            return _Piece(st, start, length, True)
    return None


def _splice(rng: np.random.Generator, pieces: list[_Piece], n: int, fs: float) -> np.ndarray:
    """Join the pieces end to end with equal-power crossfades on the rest side."""
    out = np.zeros(n)
    starts = np.cumsum([0] + [p.length for p in pieces[:-1]])
    # the crossfade region of each joint: before it when a contraction follows, else after
    joints = []
    for k in range(len(pieces) - 1):
        L = max(1, round(rng.uniform(*CROSSFADE_S) * fs))
        at = int(starts[k + 1])
        joints.append((at - L, L) if pieces[k + 1].active else (at, L))
    for k, piece in enumerate(pieces):
        st = piece.stretch
        a = int(starts[k])
        lo, hi = a, a + piece.length
        if k > 0 and joints[k - 1][0] < a:           # fades in over its own context
            lo = joints[k - 1][0]
        if k < len(pieces) - 1 and joints[k][0] >= hi:  # fades out over its own context
            hi = joints[k][0] + joints[k][1]
        src0 = st.pad + piece.start - (a - lo)
        seg = st.data[src0 : src0 + (hi - lo)].copy()
        w = np.ones(hi - lo)
        if k > 0:
            j0, L = joints[k - 1]
            r = (np.arange(L) + 0.5) / L
            w[j0 - lo : j0 - lo + L] = np.sin(0.5 * np.pi * r)
        if k < len(pieces) - 1:
            j0, L = joints[k]
            r = (np.arange(L) + 0.5) / L
            w[j0 - lo : j0 - lo + L] = np.cos(0.5 * np.pi * r)
        out[lo:hi] += w * seg
    return out


def _channel_plan(rng: np.random.Generator, st: Stretches, c: int, n: int,
                  spasm_min_s: float) -> list[_Piece]:
    fs = st.fs
    rest, active = st.rest[c], st.contraction[c]
    plan: list[_Piece] = []
    pos = 0
    rest_n = round(rng.uniform(2.0, 8.0) * fs)
    while True:
        if not active or pos + rest_n + round(1.0 * fs) >= n:
            break
        room = n - pos - rest_n - round(1.0 * fs)
        piece = _contraction(rng, active, st.rest_rms[c], fs, spasm_min_s, room)
        if piece is None:
            break
        plan += _rest_pieces(rng, rest, rest_n, fs)
        plan.append(piece)
        pos += rest_n + piece.length
        rest_n = round(_rest_interval(rng) * fs)
    plan += _rest_pieces(rng, rest, n - pos, fs)
    return plan


def draw(rng: np.random.Generator, stretches: Stretches, duration_s: float = 60.0, *,
         spasm_min_s: float = DEFAULT_SPASM_MIN_S) -> SyntheticRecording:
    """Splice one recording of one device from its real stretches, with exact truth.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    stretches : Stretches
        One device's stretches (from :func:`load_stretches`).
    duration_s : float
        Length of the recording, s.
    spasm_min_s : float
        Twitch/spasm boundary of the truth's labels.

    Returns
    -------
    SyntheticRecording
        In the device's unit and rate, all channels of the device; ``truth``
        with :data:`~emg_pipeline.sources.synthetic.TRUTH_COLUMNS`; no
        artefacts.
    """
    fs = stretches.fs
    n = round(duration_s * fs)
    if n < round(2.0 * fs):
        raise ValueError(f"duration_s={duration_s:g}: at least 2 s")
    sos = _band_sos(fs)
    x = np.zeros((n, len(stretches.channels)))
    rows: list[tuple] = []
    for c, name in enumerate(stretches.channels):
        plan = _channel_plan(rng, stretches, c, n, spasm_min_s)
        y = _splice(rng, plan, n, fs)
        band = signal.sosfiltfilt(sos, y)
        starts = np.cumsum([0] + [p.length for p in plan])
        for k, piece in enumerate(plan):
            if not piece.active:
                continue
            i0, i1 = int(starts[k]), int(starts[k]) + piece.length
            # the rest intervals on either side: the runs of rest pieces next to it
            before = k
            while before > 0 and not plan[before - 1].active:
                before -= 1
            after = k + 1
            while after < len(plan) and not plan[after].active:
                after += 1
            rest = np.r_[band[int(starts[before]) : i0], band[i1 : int(starts[after])]]
            snr = 20.0 * math.log10(_rms(band[i0:i1]) / max(_rms(rest), 1e-12))
            dur = piece.length / fs
            label = label_for(dur, spasm_min_s).value
            pattern = "phasic" if dur < spasm_min_s else "tonic"
            rows.append((name, i0 / fs, i1 / fs, dur, label, pattern, snr))
        v = y + stretches.dc[c]
        if stretches.lsb is not None:
            g = stretches.grid[c]
            v = g + np.round((v - g) / stretches.lsb) * stretches.lsb
        if stretches.limits is not None:
            v = np.clip(v, *stretches.limits)
        x[:, c] = v
    truth = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    truth = truth.sort_values(["onset_s", "channel"], kind="stable").reset_index(drop=True)
    artefacts = pd.DataFrame([], columns=list(ARTEFACT_COLUMNS))
    return SyntheticRecording(x, fs, stretches.channels, truth, artefacts, unit=stretches.unit)
