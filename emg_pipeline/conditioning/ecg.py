"""Keeping heartbeats out of the EMG band on channels that carry ECG.

On trunk muscles (back, abdomen) and near the chest the electrodes also pick up
the heart: R waves of a hundred µV to a few mV, far larger than a weak
contraction. The QRS complex has much of its energy between 10 and 40 Hz, so a
20 Hz band-pass leaves a spike train in the band that looks like activity
(after a 20-450 Hz band-pass a 400 µV R wave leaks about 45 µV into a 100 ms
RMS envelope). A fourth-order high-pass at 30 Hz was the best single filter of
the 23 methods Drake and Callaghan compared (J Electromyogr Kinesiol 16:175,
2006); a steeper cut costs little EMG: on the usual sEMG spectral model a 60 Hz
corner keeps about 76 % of its power and leaves about 3 % of the ECG leak.

:class:`EcgSuppressor` finds the channels that carry ECG and applies that extra
high-pass to them only:

* the raw signal is cut into frames, band-passed to 5-25 Hz (where the QRS
  lives and EMG has little power) and its amplitude kept for the last
  ``window_s``;
* every ``block_s`` on the stream's sample clock, each channel is judged: ECG
  shows as a train of peaks standing far above the median (``peak_mad``
  robust deviations) at a regular interval of 0.375-1.5 s (40-160 beats per
  minute; clonus at 3-8 Hz is faster), with coefficients of variation of the
  intervals and of the peak heights below ``max_cv``;
* a channel is switched on at the first such block and off after three blocks
  without a heartbeat; a switch takes effect at the block boundary, so the
  output does not depend on how the stream is chunked.

The frames that carried a switched-on channel are reported, so that the
artefact gate can judge their low-band energy against the heartbeat's own
level instead of treating every beat as an artefact.

A chunk is one call of a compiled kernel, :func:`_ecg_kernel`, that walks it
in sample order: the frame sums (the additions of
:func:`~emg_pipeline.framing.frame_sum`), both filters (the arithmetic of
``scipy.signal.sosfilt``), the amplitude ring, the flags, and at each block
boundary the judgement, :func:`_judge`. A judgement looks at the amplitude
pooled to at most 100 values per second (the maximum of each group of frames,
which keeps every beat's peak). Its beats are the local maxima that reach the
height (the middle of a flat top, as ``scipy.signal.find_peaks`` has them),
thinned by the minimum distance: from the highest down, a kept beat drops its
lower neighbours closer than the distance, and of two beats of equal height
the earlier counts as the higher. Medians are those of ``np.median``: a count
of the values' bit patterns in bins narrows the search to a few values, which
a quickselect finishes (:func:`_median_of`). A channel with a non-finite
amplitude in the window (a NaN or an infinity in its raw signal; it stays so in
the low-band filter's state until a reset) shows no heartbeat.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from .filters import butter_sos, steady_state

__all__ = ["EcgSuppressor"]

_BEAT_INTERVAL_S = (0.375, 1.5)
_MISSES_OFF = 3  # blocks without a heartbeat before a channel is switched off

# the carried integer state: counters, then per channel the blocks without a
# heartbeat and whether it is switched on (one int64 array owned by the stage)
_SAMPLES = 0  # samples seen since the reset
_NEXT = 1  # sample count at which the next judgement is due
_FRAMES = 2  # frames written to the amplitude ring
_IN_FRAME = 3  # samples of the unfinished frame (summed in the accumulator)
_STARTED = 4  # 1 once the low-band filter has its steady state
_N_COUNTERS = 5  # then misses (n_channels), then the switches (n_channels, 0 or 1)

_FLOAT = np.dtype(np.float64)
_BINS = 512  # bins of the medians' first pass
_LOW, _HIGH = 0, 1  # the low-band filter of the frame means, the high-pass of the band
# the configuration handed to the kernel: integers (indices into ``_iconf``)
_FRAME_LEN, _BLOCK_SAMPLES, _FILTERING, _POOL, _LO, _HI, _DISTANCE, _WINDOW = range(8)
# and floats (indices into ``_fconf``; the low-band filter's steady state for
# a unit input, ``sosfilt_zi``'s (2, 2), from _LOW_ZI on)
_PEAK_MAD, _MAX_CV, _LOW_ZI = 0, 1, 2


@jit
def _kth_pair(src: np.ndarray, count: int, k: int, low: np.ndarray, high: np.ndarray
              ) -> tuple[float, float]:
    """The ``k - 1``-th and ``k``-th smallest of the finite ``src[:count]``.

    The first is ``-inf`` for ``k == 0``. A quickselect whose partitions write
    every value to both scratch arrays ``low`` and ``high`` (as long as
    ``count``; ``src`` may be one of them) and advance only the cursor of its
    side: no branch depends on the data (a swapping partition mispredicts
    half of its branches). Values equal to the pivot are counted and dropped,
    so repeated values cost no more than distinct ones. The value below the
    ``k``-th is tracked on the way: the largest value dropped on the left, or
    the largest of the last left part.
    """
    below = -np.inf  # largest value dropped on the left of the range
    while True:
        a = src[0]
        b = src[count // 2]
        c = src[count - 1]
        if a < b:
            pivot = b if b < c else (c if a < c else a)
        else:
            pivot = a if a < c else (c if b < c else b)
        n_low = 0
        n_high = 0
        for i in range(count):
            v = src[i]
            low[n_low] = v
            high[n_high] = v
            n_low += v < pivot
            n_high += v > pivot
        n_equal = count - n_low - n_high
        if k < n_low:
            src = low
            count = n_low
        elif k < n_low + n_equal:
            if k > n_low:
                return pivot, pivot
            if n_low > 0:
                lower = low[0]
                for i in range(1, n_low):
                    lower = max(lower, low[i])
                return lower, pivot
            return below, pivot
        else:
            k -= n_low + n_equal
            below = pivot
            src = high
            count = n_high


@jit
def _median_of(x: np.ndarray, low: np.ndarray, high: np.ndarray, hist: np.ndarray) -> float:
    """Median of the finite, non-negative ``x``, as ``np.median`` gives it.

    The bit patterns of non-negative doubles are in the order of their
    values: one pass counts them in ``len(hist)`` bins of consecutive bit
    patterns (a few dozen per octave of the data), which tells the bin of the
    middle value; a second pass collects that bin into ``low``, and
    :func:`_kth_pair` finishes on those few values (for an even length the
    value below the middle one may take a third pass, over the lower bins).
    Up to 64 values go to :func:`_kth_pair` directly. ``x`` is not
    modified; ``low`` and ``high`` are as long as ``x``. About
    1.7 times as fast as :func:`_kth_pair` alone on a thousand amplitudes,
    and slower than it by no more than these passes when the values crowd
    into one bin (a far outlier).
    """
    n = x.shape[0]
    k = n // 2
    if n <= 64:  # a few values (beat intervals, heights): the quickselect alone
        lower, upper = _kth_pair(x, n, k, low, high)
        return upper if n % 2 else 0.5 * (lower + upper)
    bits = x.view(np.int64)
    first = bits[0]
    last = bits[0]
    for i in range(1, n):
        first = min(first, bits[i])
        last = max(last, bits[i])
    shift = 0
    while (last - first) >> shift >= hist.shape[0]:
        shift += 1
    hist[:] = 0
    for i in range(n):
        hist[(bits[i] - first) >> shift] += 1
    before = 0  # values in the bins below the middle one's
    middle = 0
    while before + hist[middle] <= k:
        before += hist[middle]
        middle += 1
    m = np.int64(0)  # not a literal: one compiled version of the callee
    for i in range(n):
        low[m] = x[i]
        m += ((bits[i] - first) >> shift) == middle
    lower, upper = _kth_pair(low, m, k - before, low, high)
    if n % 2:
        return upper
    if k == before:  # the value below the middle one is in a lower bin
        lower = -np.inf
        for i in range(n):
            if ((bits[i] - first) >> shift) < middle:
                lower = max(lower, x[i])
    return 0.5 * (lower + upper)


@jit
def _robust_sd(x: np.ndarray, centre: float, dev: np.ndarray, low: np.ndarray,
               high: np.ndarray, hist: np.ndarray) -> float:
    """Standard deviation of ``x`` estimated from its median absolute deviation.

    ``centre`` is the median of ``x``; ``dev`` is scratch like ``low`` and ``high``.
    """
    n = x.shape[0]
    for i in range(n):
        dev[i] = abs(x[i] - centre)
    return 1.4826 * _median_of(dev[:n], low, high, hist)


@jit
def _judge(amp: np.ndarray, end: int, iconf: np.ndarray, fconf: np.ndarray,
           found: np.ndarray) -> None:
    """Whether each channel shows heartbeats in the ``window_s`` before frame ``end``.

    ``amp`` is the amplitude ring (frame ``f`` in row ``f % len(amp)``);
    ``found`` (bool, one per channel) receives the answers.
    """
    cap, n_ch = amp.shape
    pool = iconf[_POOL]
    distance = iconf[_DISTANCE]
    max_cv = fconf[_MAX_CV]
    usable = min(end, iconf[_WINDOW])
    usable -= usable % pool
    m = usable // pool
    found[:] = False
    if m == 0:
        return
    min_beats = max(4, int(0.8 * m / iconf[_HI]))
    # the maximum of each group of `pool` frames, every channel in one pass
    # (and whether each channel's frames are finite: ``v - v`` is 0 or NaN)
    rows = np.empty((n_ch, m))
    check = np.zeros(n_ch)
    slot = (end - usable) % cap
    for k in range(m):
        for c in range(n_ch):
            v = amp[slot, c]
            check[c] += v - v
            rows[c, k] = v
        slot = slot + 1 if slot + 1 < cap else 0
        for _ in range(1, pool):
            for c in range(n_ch):
                v = amp[slot, c]
                check[c] += v - v
                if v > rows[c, k]:
                    rows[c, k] = v
            slot = slot + 1 if slot + 1 < cap else 0
    low = np.empty(m)
    high = np.empty(m)
    dev = np.empty(m)
    hist = np.empty(_BINS, dtype=np.int64)
    peaks = np.empty(m // 2 + 1, dtype=np.int64)
    heights = np.empty(m // 2 + 1)
    keep = np.empty(m // 2 + 1, dtype=np.bool_)
    order = np.empty(m // 2 + 1, dtype=np.int64)
    gaps = np.empty(m // 2 + 1)
    for c in range(n_ch):
        if check[c] != 0.0:  # NaN: a non-finite amplitude
            continue
        row = rows[c]
        centre = _median_of(row, low, high, hist)
        for k in range(m):
            dev[k] = abs(row[k] - centre)
        mad = _median_of(dev, low, high, hist)
        height = centre + fconf[_PEAK_MAD] * max(mad, 1e-12)
        # local maxima that reach the height (the middle of a flat top)
        n_peaks = 0
        i = 1
        while i < m - 1:
            if height <= row[i] and row[i - 1] < row[i]:
                ahead = i + 1
                while ahead < m - 1 and row[ahead] == row[i]:
                    ahead += 1
                if row[ahead] < row[i]:
                    peaks[n_peaks] = (i + ahead - 1) // 2
                    heights[n_peaks] = row[i]
                    n_peaks += 1
                    i = ahead
            i += 1
        # the highest first (the earlier of equal ones), dropping the neighbours
        # it keeps closer than `distance`
        for r in range(n_peaks):  # a stable insertion sort of the beats by height
            j = r
            while j > 0 and heights[order[j - 1]] < heights[r]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = r
        keep[:n_peaks] = True
        for r in range(n_peaks):
            j = order[r]
            if keep[j]:
                r = j - 1
                while r >= 0 and peaks[j] - peaks[r] < distance:
                    keep[r] = False
                    r -= 1
                r = j + 1
                while r < n_peaks and peaks[r] - peaks[j] < distance:
                    keep[r] = False
                    r += 1
        n_kept = 0
        for r in range(n_peaks):
            if keep[r]:
                peaks[n_kept] = peaks[r]
                heights[n_kept] = heights[r]
                n_kept += 1
        if n_kept < min_beats:
            continue
        for r in range(n_kept - 1):
            gaps[r] = peaks[r + 1] - peaks[r]
        typical = _median_of(gaps[: n_kept - 1], low, high, hist)
        tall = _median_of(heights[:n_kept], low, high, hist)
        # robust spreads: a pop or a knock among the beats must not hide them
        found[c] = (
            iconf[_LO] <= typical <= iconf[_HI]
            and _robust_sd(gaps[: n_kept - 1], typical, dev, low, high, hist) <= max_cv * typical
            and _robust_sd(heights[:n_kept], tall, dev, low, high, hist) <= max_cv * tall
        )


@jit
def _sos2_one(
    x: np.ndarray, y: np.ndarray, start: int, stop: int, c: int, sos: np.ndarray,
    zi: np.ndarray,
) -> None:
    """Two second-order sections on rows ``[start, stop)`` of column ``c``, ``x`` into ``y``.

    The arithmetic of ``scipy.signal.sosfilt`` (direct form II transposed),
    with the state ``zi[c]`` held in registers over the rows: the recursion
    costs a few cycles per sample instead of a round trip through memory.
    (:func:`~emg_pipeline.conditioning.filters.sos_rows` keeps its state in
    memory, which pays off with many channels side by side; on the one to a
    few heartbeat channels filtered here it made the stage ~30 % slower.)
    """
    b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    s00, s01, s10, s11 = zi[c, 0, 0], zi[c, 0, 1], zi[c, 1, 0], zi[c, 1, 1]
    for t in range(start, stop):
        xn = x[t, c]
        xc = b00 * xn + s00
        s00 = b01 * xn - a01 * xc + s01
        s01 = b02 * xn - a02 * xc
        xn = xc
        xc = b10 * xn + s10
        s10 = b11 * xn - a11 * xc + s11
        s11 = b12 * xn - a12 * xc
        y[t, c] = xc
    zi[c, 0, 0], zi[c, 0, 1], zi[c, 1, 0], zi[c, 1, 1] = s00, s01, s10, s11


@jit
def _sos2_two(
    x: np.ndarray, y: np.ndarray, start: int, stop: int, c: int, d: int, sos: np.ndarray,
    zi: np.ndarray,
) -> None:
    """:func:`_sos2_one` on columns ``c`` and ``d`` at once (their recursions overlap)."""
    b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    s00, s01, s10, s11 = zi[c, 0, 0], zi[c, 0, 1], zi[c, 1, 0], zi[c, 1, 1]
    r00, r01, r10, r11 = zi[d, 0, 0], zi[d, 0, 1], zi[d, 1, 0], zi[d, 1, 1]
    for t in range(start, stop):
        xn = x[t, c]
        yn = x[t, d]
        xc = b00 * xn + s00
        yc = b00 * yn + r00
        s00 = b01 * xn - a01 * xc + s01
        r00 = b01 * yn - a01 * yc + r01
        s01 = b02 * xn - a02 * xc
        r01 = b02 * yn - a02 * yc
        xn = xc
        yn = yc
        xc = b10 * xn + s10
        yc = b10 * yn + r10
        s10 = b11 * xn - a11 * xc + s11
        r10 = b11 * yn - a11 * yc + r11
        s11 = b12 * xn - a12 * xc
        r11 = b12 * yn - a12 * yc
        y[t, c] = xc
        y[t, d] = yc
    zi[c, 0, 0], zi[c, 0, 1], zi[c, 1, 0], zi[c, 1, 1] = s00, s01, s10, s11
    zi[d, 0, 0], zi[d, 0, 1], zi[d, 1, 0], zi[d, 1, 1] = r00, r01, r10, r11


@jit
def _sos2_columns(
    x: np.ndarray, y: np.ndarray, start: int, stop: int, cols: np.ndarray, n_cols: int,
    sos: np.ndarray, zi: np.ndarray,
) -> None:
    """:func:`_sos2_one` on the columns ``cols[:n_cols]``, two at a time."""
    q = 0
    while q + 1 < n_cols:
        _sos2_two(x, y, start, stop, cols[q], cols[q + 1], sos, zi)
        q += 2
    if q < n_cols:
        _sos2_one(x, y, start, stop, cols[q], sos, zi)


@jit
def _ecg_kernel(
    raw: np.ndarray,
    band: np.ndarray,
    sos: np.ndarray,
    iconf: np.ndarray,
    fconf: np.ndarray,
    acc: np.ndarray,
    zi: np.ndarray,
    amp: np.ndarray,
    state: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the stage over one chunk; return the filtered band and the frames' flags.

    Frames of ``raw`` are summed sample after sample (the additions of
    :func:`~emg_pipeline.framing.frame_sum`; the unfinished frame is carried
    as its partial sum ``acc``), their means go through the low-band filter
    into the amplitude ring ``amp``, every completed frame gets its row of
    flags, the channels switched on are high-passed from ``band`` into a copy
    of it (``band`` itself is returned when no channel is filtered), and the
    channels are judged at each block boundary. ``sos`` holds the sections of
    the two filters (:data:`_LOW`, :data:`_HIGH`) and ``zi`` their states,
    ``(2, n_channels, 2, 2)``; ``state`` the counters, misses and switches.
    """
    n, n_ch = raw.shape
    low_sos, hp_sos = sos[_LOW], sos[_HIGH]
    zi_low, zi_hp = zi[_LOW], zi[_HIGH]
    frame_len = iconf[_FRAME_LEN]
    filtering = iconf[_FILTERING] != 0
    cap = amp.shape[0]
    misses = state[_N_COUNTERS : _N_COUNTERS + n_ch]
    ecg = state[_N_COUNTERS + n_ch : _N_COUNTERS + 2 * n_ch]
    samples = state[_SAMPLES]
    nxt = state[_NEXT]
    frames = state[_FRAMES]
    in_frame = state[_IN_FRAME]
    flags = np.empty(((in_frame + n) // frame_len, n_ch), dtype=np.bool_)
    out = band
    copied = False
    every = np.arange(n_ch)
    cols = np.empty(n_ch, dtype=np.int64)
    found = np.empty(n_ch, dtype=np.bool_)
    row = 0
    i = 0
    while i < n:
        # a segment: up to the end of the chunk or of the block
        stop = min(n, i + (nxt - samples))
        n_on = 0
        for c in range(n_ch):
            if ecg[c]:
                cols[n_on] = c
                n_on += 1
        if filtering and n_on:
            if not copied:
                out = band.copy()
                copied = True
            _sos2_columns(band, out, i, stop, cols, n_on, hp_sos, zi_hp)
        # frame means into the ring, then the low band in place
        first_frame = frames
        t = i
        while t < stop:
            take = min(stop - t, frame_len - in_frame)
            r0 = t
            if in_frame == 0:
                for c in range(n_ch):
                    acc[c] = raw[t, c]
                r0 += 1
            for r in range(r0, t + take):
                for c in range(n_ch):
                    acc[c] += raw[r, c]
            t += take
            in_frame += take
            if in_frame < frame_len:
                break
            in_frame = 0
            slot = frames % cap
            for c in range(n_ch):
                amp[slot, c] = acc[c] / frame_len
            frames += 1
        if frames > first_frame:
            s0 = first_frame % cap
            if state[_STARTED] == 0:
                state[_STARTED] = 1
                for c in range(n_ch):
                    for s in range(low_sos.shape[0]):
                        zi_low[c, s, 0] = fconf[_LOW_ZI + 2 * s] * amp[s0, c]
                        zi_low[c, s, 1] = fconf[_LOW_ZI + 2 * s + 1] * amp[s0, c]
            # the frames of a segment lie in one block, and the ring holds
            # whole blocks: they are consecutive rows of the ring
            s1 = s0 + (frames - first_frame)
            _sos2_columns(amp, amp, s0, s1, every, n_ch, low_sos, zi_low)
            for f in range(s0, s1):
                for c in range(n_ch):
                    amp[f, c] = abs(amp[f, c])
                    flags[row, c] = ecg[c] != 0
                row += 1
        samples += stop - i
        i = stop
        if samples == nxt:
            _judge(amp, frames, iconf, fconf, found)
            for c in range(n_ch):
                misses[c] = 0 if found[c] else misses[c] + 1
                ecg[c] = found[c] or (ecg[c] != 0 and misses[c] < _MISSES_OFF)
            nxt += iconf[_BLOCK_SAMPLES]
    state[_SAMPLES] = samples
    state[_NEXT] = nxt
    state[_FRAMES] = frames
    state[_IN_FRAME] = in_frame
    return out, flags


class EcgSuppressor:
    """Detect ECG per channel and high-pass the channels that carry it.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    n_channels : int
        Number of channels.
    frame_len : int
        Samples per frame (the envelope's framing).
    band_hz : tuple of float
        Band of the band-passed signal this stage receives.
    highpass_hz : float
        Corner of the extra fourth-order Butterworth high-pass on ECG channels.
        No extra filter when it is not inside ``band_hz`` (low-rate boards).
    block_s : float
        How often channels are judged.
    window_s : float
        Length of signal each judgement looks at.
    peak_mad : float
        A beat stands this many robust deviations above the median amplitude.
    max_cv : float
        Largest coefficient of variation of the beat intervals and heights.

    Examples
    --------
    >>> from emg_pipeline.sources.synthetic import simulate
    >>> rec = simulate(np.random.default_rng(0), fs=1000.0, duration_s=30.0, n_channels=2,
    ...                events=False, ecg_uv=[0.0, 300.0])
    >>> ecg = EcgSuppressor(1000.0, 2, 5, (20.0, 450.0))
    >>> _, flags = ecg.process(rec.signal, rec.signal)
    >>> ecg.ecg.tolist()
    [False, True]
    """

    def __init__(
        self,
        fs: float,
        n_channels: int,
        frame_len: int,
        band_hz: tuple[float, float],
        highpass_hz: float = 60.0,
        block_s: float = 5.0,
        window_s: float = 10.0,
        peak_mad: float = 8.0,
        max_cv: float = 0.25,
    ) -> None:
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.frame_len = int(frame_len)
        self.band_hz = (float(band_hz[0]), float(band_hz[1]))
        self.highpass_hz = float(highpass_hz)
        self.block_s = float(block_s)
        self.window_s = float(window_s)
        self.peak_mad = float(peak_mad)
        self.max_cv = float(max_cv)
        self.frame_rate = self.fs / self.frame_len
        self._block_frames = max(1, round(self.block_s * self.frame_rate))
        self._block_samples = self._block_frames * self.frame_len
        self._window_frames = max(self._block_frames, round(self.window_s * self.frame_rate))
        top = min(25.0, 0.4 * self.frame_rate)
        self._low_sos = butter_sos(2, (5.0, top), "bandpass", self.frame_rate)
        self.filtering = self.band_hz[0] < self.highpass_hz < self.band_hz[1]
        self._hp_sos = (
            butter_sos(4, self.highpass_hz, "highpass", self.fs)
            if self.filtering else None
        )
        # judged at no more than 100 values per second: the maximum of each group
        # of frames keeps every beat's peak, and the search costs less
        self._pool = max(1, int(self.frame_rate // 100))
        rate = self.frame_rate / self._pool
        self._lo, self._hi = (round(s * rate) for s in _BEAT_INTERVAL_S)
        # peaks closer than a beat can be (clonus bursts come every 0.13-0.3 s)
        # are kept, so that a fast rhythm shows as one and is not thinned out
        # into something that looks like a heartbeat
        self._distance = max(1, round(0.1 * rate))
        # the kernel's configuration, kept apart from the carried state: the
        # sections of both filters (two each; the high-pass's unused when off)
        self._sos = np.zeros((2, 2, 6))
        self._sos[_LOW] = self._low_sos
        if self._hp_sos is not None:
            self._sos[_HIGH] = self._hp_sos
        self._iconf = np.zeros(8, dtype=np.int64)
        self._iconf[[_FRAME_LEN, _BLOCK_SAMPLES, _FILTERING, _POOL, _LO, _HI, _DISTANCE,
                     _WINDOW]] = (
            self.frame_len, self._block_samples, int(self.filtering), self._pool,
            self._lo, self._hi, self._distance, self._window_frames,
        )
        self._fconf = np.zeros(_LOW_ZI + 4)
        self._fconf[[_PEAK_MAD, _MAX_CV]] = self.peak_mad, self.max_cv
        self._fconf[_LOW_ZI:] = steady_state(self._low_sos).ravel()
        C = self.n_channels
        # the carried state
        self._acc = np.zeros(C)  # sum of the unfinished frame
        self._zi = np.zeros((2, C, 2, 2))  # filter states, the layout of sosfilt_state
        # amplitude of the last window_s, a ring addressed by absolute frame
        # index, of whole blocks (the frames of a block are consecutive rows);
        # only frames written since the reset are ever read, so it is not cleared
        blocks = -(-self._window_frames // self._block_frames)
        self._amp = np.empty((blocks * self._block_frames, C))
        self._state = np.zeros(_N_COUNTERS + 2 * C, dtype=np.int64)
        # what every kernel call takes after the chunk (fewer arguments to type)
        self._kernel_args = (self._sos, self._iconf, self._fconf, self._acc, self._zi,
                             self._amp, self._state)
        self.reset()

    def reset(self) -> None:
        """Forget the detections, the filter states and the kept amplitude."""
        self._acc[:] = 0.0
        self._zi[:] = 0.0
        self._state[:] = 0
        self._state[_NEXT] = self._block_samples

    @property
    def ecg(self) -> np.ndarray:
        """Which channels carry ECG now (bool, one per channel; a copy)."""
        return self._state[_N_COUNTERS + self.n_channels :] != 0

    def process(self, raw: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter one chunk; return it and the ECG flags of the frames it completed.

        Parameters
        ----------
        raw : ndarray, shape (n_samples, n_channels)
            Raw samples (gaps bridged), where heartbeats are looked for.
        band : ndarray, shape (n_samples, n_channels)
            The same samples band-passed: the signal that is filtered.

        Returns
        -------
        band : ndarray, shape (n_samples, n_channels)
            ``band`` with the extra high-pass on the channels carrying ECG
            (``band`` itself when there are none).
        flags : ndarray of bool, shape (n_frames, n_channels)
            Which channels were treated as carrying ECG, per completed frame.
        """
        if raw.dtype is not _FLOAT:
            raw = np.asarray(raw, dtype=np.float64)
        if band.dtype is not _FLOAT:
            band = np.asarray(band, dtype=np.float64)
        return _ecg_kernel(raw, band, *self._kernel_args)
