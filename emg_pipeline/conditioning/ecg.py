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

A chunk is one call of a compiled kernel that walks it in sample order: the
frame sums (the additions of :func:`~emg_pipeline.framing.frame_sum`), both
filters (the arithmetic of ``scipy.signal.sosfilt``), the amplitude ring and
the judgements, whose peak search is that of ``scipy.signal.find_peaks``. The
results are those of the same steps written with numpy and scipy, bit for bit;
the two cases the kernel's judgement cannot settle exactly (non-finite
amplitudes, two candidate beats of equal height) are handed back to that
numpy version.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

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
_N_ON = 5  # channels switched on
_ROW = 6  # flag rows written by an interrupted kernel call
_N_COUNTERS = 7  # then misses (n_channels), then the switches (n_channels, 0 or 1)

_FLOAT = np.dtype(np.float64)
_BOOL = np.dtype(bool)
_BINS = 512  # bins of the medians' first pass
_LOW, _HIGH = 0, 1  # the low-band filter of the frame means, the high-pass of the band
# the configuration handed to the kernel: integers (indices into ``_iconf``)
_FRAME_LEN, _BLOCK_SAMPLES, _FILTERING, _POOL, _LO, _HI, _DISTANCE, _WINDOW = range(8)
# and floats (indices into ``_fconf``; the low-band filter's steady state for
# a unit input, ``sosfilt_zi``'s (2, 2), from _LOW_ZI on)
_PEAK_MAD, _MAX_CV, _LOW_ZI = 0, 1, 2


def _median_rows(rows: np.ndarray) -> np.ndarray:
    """Median of each row (a partition, several times cheaper than ``np.median``)."""
    n = rows.shape[1]
    k = n // 2
    if n % 2:
        return np.partition(rows, k, axis=1)[:, k]
    part = np.partition(rows, (k - 1, k), axis=1)
    return 0.5 * (part[:, k - 1] + part[:, k])


def _median(values: np.ndarray) -> float:
    """Median of a short 1-D array (``np.median`` costs tens of µs even on ten values)."""
    v = np.sort(values)
    n = v.shape[0]
    return 0.5 * float(v[(n - 1) // 2] + v[n // 2])


def _robust_sd(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation."""
    return 1.4826 * _median(np.abs(values - _median(values)))


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
    """Median of the finite, non-negative ``x`` as :func:`_median_rows` gives it.

    The bit patterns of non-negative doubles are in the order of their
    values: one pass counts them in ``len(hist)`` bins of consecutive bit
    patterns (a few dozen per octave of the data), which tells the bin of the
    middle value; a second pass collects that bin into ``low``, and
    :func:`_kth_pair` finishes on those few values (for an even length the
    value below the middle one may take a third pass, over the lower bins).
    ``x`` is not modified; ``low`` and ``high`` are as long as ``x``. About
    1.7 times as fast as :func:`_kth_pair` alone on a thousand amplitudes,
    and slower than it by no more than these passes when the values crowd
    into one bin (a far outlier).
    """
    n = x.shape[0]
    k = n // 2
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
def _insertion_sort(v: np.ndarray, n: int) -> None:
    """Sort ``v[:n]`` in place (a few dozen values)."""
    for i in range(1, n):
        x = v[i]
        j = i - 1
        while j >= 0 and v[j] > x:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = x


@jit
def _order_by(keys: np.ndarray, order: np.ndarray, n: int) -> None:
    """Indices of ``keys[:n]`` in increasing order into ``order[:n]`` (a Shell sort).

    Equal keys come in no particular order (the caller checks for them).
    """
    for i in range(n):
        order[i] = i
    for gap in (701, 301, 132, 57, 23, 10, 4, 1):
        for i in range(gap, n):
            x = order[i]
            j = i
            while j >= gap and keys[order[j - gap]] > keys[x]:
                order[j] = order[j - gap]
                j -= gap
            order[j] = x


@jit
def _sorted_median(v: np.ndarray, n: int) -> float:
    """Median of the sorted ``v[:n]`` as :func:`_median` computes it."""
    return 0.5 * (v[(n - 1) // 2] + v[n // 2])


@jit
def _robust_sd_sorted(v: np.ndarray, n: int, centre: float, dev: np.ndarray) -> float:
    """:func:`_robust_sd` of the sorted ``v[:n]`` whose median is ``centre``."""
    for i in range(n):
        dev[i] = abs(v[i] - centre)
    _insertion_sort(dev, n)
    return 1.4826 * _sorted_median(dev, n)


@jit
def _judge_kernel(
    amp: np.ndarray, end: int, iconf: np.ndarray, fconf: np.ndarray, found: np.ndarray
) -> bool:
    """Judge every channel on the amplitude ring; ``False`` when it cannot be done here.

    The decisions of :meth:`EcgSuppressor._found_exactly`, value for value:
    ``scipy.signal.find_peaks`` (local maxima with plateaus, the height
    condition, then the greedy distance selection by decreasing height) and
    the same medians. Two situations are left to that method: non-finite
    amplitudes, and two candidate beats of exactly the same height (scipy's
    order among equal heights is that of numpy's unstable argsort).
    """
    cap, n_ch = amp.shape
    pool = iconf[_POOL]
    lo = iconf[_LO]
    hi = iconf[_HI]
    distance = iconf[_DISTANCE]
    peak_mad = fconf[_PEAK_MAD]
    max_cv = fconf[_MAX_CV]
    avail = min(end, iconf[_WINDOW])
    usable = avail - avail % pool
    m = usable // pool
    if m == 0:
        return False
    min_beats = max(4, int(0.8 * m / hi))
    dev = np.empty(m)
    hist = np.empty(_BINS, dtype=np.int64)
    low = np.empty(m)
    high = np.empty(m)
    peaks = np.empty(m // 2 + 1, dtype=np.int64)
    heights = np.empty(m // 2 + 1)
    order = np.empty(m // 2 + 1, dtype=np.int64)
    keep = np.empty(m // 2 + 1, dtype=np.bool_)
    gaps = np.empty(m // 2 + 1)
    # the maximum of each group of `pool` frames, every channel in one pass
    rows = np.empty((n_ch, m))
    slot = (end - usable) % cap
    finite = True
    for k in range(m):
        for c in range(n_ch):
            v = amp[slot, c]
            finite &= np.isfinite(v)
            rows[c, k] = v
        slot += 1
        if slot == cap:
            slot = 0
        for _ in range(1, pool):
            for c in range(n_ch):
                v = amp[slot, c]
                finite &= np.isfinite(v)
                if v > rows[c, k]:
                    rows[c, k] = v
            slot += 1
            if slot == cap:
                slot = 0
    if not finite:
        return False
    for c in range(n_ch):
        row = rows[c]
        median = _median_of(row, low, high, hist)
        for k in range(m):
            dev[k] = abs(row[k] - median)
        mad = _median_of(dev, low, high, hist)
        if 1e-12 > mad:
            mad = 1e-12
        height = median + peak_mad * mad
        # local maxima (the middle of a plateau) that reach the height; the
        # height is tested first, as it is reached in few places (a rise is
        # found every other value: a branch on it is mispredicted half the time)
        n_peaks = np.int64(0)  # not a literal: one compiled version of the callees
        i = 1
        i_max = m - 1
        while i < i_max:
            if height <= row[i] and row[i - 1] < row[i]:
                ahead = i + 1
                while ahead < i_max and row[ahead] == row[i]:
                    ahead += 1
                if row[ahead] < row[i]:
                    peaks[n_peaks] = (i + ahead - 1) // 2
                    heights[n_peaks] = row[i]
                    n_peaks += 1
                    i = ahead
            i += 1
        # the highest beat first, its neighbours closer than `distance` dropped
        _order_by(heights, order, n_peaks)
        for r in range(1, n_peaks):
            if heights[order[r]] == heights[order[r - 1]]:
                return False
        keep[:n_peaks] = True
        for r in range(n_peaks - 1, -1, -1):
            j = order[r]
            if not keep[j]:
                continue
            k = j - 1
            while 0 <= k and peaks[j] - peaks[k] < distance:
                keep[k] = False
                k -= 1
            k = j + 1
            while k < n_peaks and peaks[k] - peaks[j] < distance:
                keep[k] = False
                k += 1
        n_kept = np.int64(0)
        for r in range(n_peaks):
            if keep[r]:
                peaks[n_kept] = peaks[r]
                heights[n_kept] = heights[r]
                n_kept += 1
        found[c] = False
        if n_kept < min_beats:
            continue
        n_gaps = n_kept - 1
        for r in range(n_gaps):
            gaps[r] = peaks[r + 1] - peaks[r]  # whole numbers: exact as floats
        _insertion_sort(gaps, n_gaps)
        typical = _sorted_median(gaps, n_gaps)
        gaps_sd = _robust_sd_sorted(gaps, n_gaps, typical, dev)
        _insertion_sort(heights, n_kept)
        tall = _sorted_median(heights, n_kept)
        heights_sd = _robust_sd_sorted(heights, n_kept, tall, dev)
        # robust spreads: a pop or a knock among the beats must not hide them
        found[c] = (
            lo <= typical <= hi
            and gaps_sd <= max_cv * typical
            and heights_sd <= max_cv * tall
        )
    return True


@jit
def _sos2_one(
    x: np.ndarray, y: np.ndarray, start: int, stop: int, c: int, sos: np.ndarray,
    zi: np.ndarray,
) -> None:
    """Two second-order sections on rows ``[start, stop)`` of column ``c``, ``x`` into ``y``.

    The arithmetic of ``scipy.signal.sosfilt`` (direct form II transposed),
    with the state ``zi[c]`` held in registers over the rows: the recursion
    costs a few cycles per sample instead of a round trip through memory.
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
    out: np.ndarray,
    flags: np.ndarray,
    copied: bool,
    start: int,
    row: int,
    sos: np.ndarray,
    iconf: np.ndarray,
    fconf: np.ndarray,
    acc: np.ndarray,
    zi: np.ndarray,
    amp: np.ndarray,
    state: np.ndarray,
) -> int:
    """Run the stage over ``raw[start:]`` / ``band[start:]``.

    Frames of ``raw`` are summed sample after sample (the additions of
    :func:`~emg_pipeline.framing.frame_sum`; the unfinished frame is carried
    as its partial sum ``acc``), their means go through the low-band filter
    into the amplitude ring, every completed frame gets its row of ``flags``,
    the channels switched on are high-passed from ``band`` into ``out``, and
    the channels are judged at each block boundary. ``sos`` holds the
    sections of the two filters (:data:`_LOW`, :data:`_HIGH`) and ``zi`` their
    states, ``(2, n_channels, 2, 2)``; ``state`` the counters, misses and
    switches. Returns ``len(raw)``, or ``-1 - i`` when stopped before sample
    ``i``: a judgement is due that :func:`_judge_kernel` leaves to numpy
    (``state[_SAMPLES] == state[_NEXT]``), or a channel is to be filtered
    while ``out`` is still ``band`` itself (``copied`` false).
    """
    n, n_ch = raw.shape
    low_sos, hp_sos = sos[_LOW], sos[_HIGH]
    zi_low, zi_hp = zi[_LOW], zi[_HIGH]
    frame_len = iconf[_FRAME_LEN]
    block_samples = iconf[_BLOCK_SAMPLES]
    filtering = iconf[_FILTERING] != 0
    cap = amp.shape[0]
    misses = state[_N_COUNTERS : _N_COUNTERS + n_ch]
    ecg = state[_N_COUNTERS + n_ch : _N_COUNTERS + 2 * n_ch]
    samples = state[_SAMPLES]
    nxt = state[_NEXT]
    frames = state[_FRAMES]
    in_frame = state[_IN_FRAME]
    started = state[_STARTED] != 0
    every = np.arange(n_ch)
    cols = np.empty(n_ch, dtype=np.int64)
    n_on = np.int64(0)  # not a literal: one compiled version of the callees
    for c in range(n_ch):
        if ecg[c]:
            cols[n_on] = c
            n_on += 1
    found = np.empty(n_ch, dtype=np.bool_)
    i = start
    stopped = False
    while i < n:
        # a segment: up to the end of the chunk or of the block
        stop = min(n, i + (nxt - samples))
        if filtering and n_on:
            if not copied:
                stopped = True
                break
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
            if not started:
                started = True
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
            if not _judge_kernel(amp, frames, iconf, fconf, found):
                stopped = True
                break
            n_on = np.int64(0)
            for c in range(n_ch):
                misses[c] = 0 if found[c] else misses[c] + 1
                ecg[c] = found[c] or (ecg[c] != 0 and misses[c] < _MISSES_OFF)
                if ecg[c]:
                    cols[n_on] = c
                    n_on += 1
            nxt += block_samples
    state[_SAMPLES] = samples
    state[_NEXT] = nxt
    state[_FRAMES] = frames
    state[_IN_FRAME] = in_frame
    state[_STARTED] = 1 if started else 0
    state[_N_ON] = n_on
    state[_ROW] = row
    return -1 - i if stopped else n


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
        self._counters = self._state[:_N_COUNTERS]  # views of its parts
        self._misses = self._state[_N_COUNTERS : _N_COUNTERS + C]
        self._switches = self._state[_N_COUNTERS + C :]
        # what every kernel call takes after the chunk (fewer arguments to type)
        self._kernel_args = (self._sos, self._iconf, self._fconf, self._acc, self._zi,
                             self._amp, self._state)
        self.reset()

    def reset(self) -> None:
        """Forget the detections, the filter states and the kept amplitude."""
        self._acc[:] = 0.0
        self._zi[:] = 0.0
        self._state[:] = 0
        self._counters[_NEXT] = self._block_samples

    @property
    def ecg(self) -> np.ndarray:
        """Which channels carry ECG now (bool, one per channel; a copy)."""
        return self._switches != 0

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
        counters = self._counters
        flags = np.empty(((int(counters[_IN_FRAME]) + raw.shape[0]) // self.frame_len,
                          self.n_channels), _BOOL)
        out = band.copy() if self.filtering and counters[_N_ON] else band
        done = _ecg_kernel(raw, band, out, flags, out is not band, 0, 0, *self._kernel_args)
        while done < 0:  # rare: a judgement left to numpy, or the first filtered rows
            if counters[_SAMPLES] == counters[_NEXT]:
                self._judge_exactly()
                counters[_NEXT] += self._block_samples
            else:
                out = band.copy()
            done = _ecg_kernel(raw, band, out, flags, out is not band, -1 - done,
                               int(counters[_ROW]), *self._kernel_args)
        return out, flags

    def _amplitude(self) -> np.ndarray:
        """The kept amplitude, oldest frame first ``(n_frames, n_channels)``."""
        end = int(self._counters[_FRAMES])
        rows = np.arange(max(0, end - self._window_frames), end)
        return self._amp[rows % self._amp.shape[0]]

    def _judge_exactly(self) -> None:
        """Judge the channels with numpy and scipy (the blocks :func:`_judge_kernel` leaves)."""
        found = self._found_exactly()
        self._misses[:] = np.where(found, 0, self._misses + 1)
        self._switches[:] = found | ((self._switches != 0) & (self._misses < _MISSES_OFF))
        self._counters[_N_ON] = int(self._switches.sum())

    def _found_exactly(self) -> np.ndarray:
        """Which channels show heartbeats in the last ``window_s`` (bool per channel)."""
        amp = self._amplitude()
        pool = self._pool
        usable = amp.shape[0] - amp.shape[0] % pool
        rows = amp[amp.shape[0] - usable :].T.reshape(self.n_channels, -1, pool).max(axis=2)
        lo, hi = self._lo, self._hi
        min_beats = max(4, int(0.8 * rows.shape[1] / hi))
        found = np.zeros(self.n_channels, dtype=bool)
        median = _median_rows(rows)
        mad = _median_rows(np.abs(rows - median[:, None]))
        for c in range(self.n_channels):  # a handful of channels, once per block
            peaks, props = signal.find_peaks(
                rows[c], height=median[c] + self.peak_mad * max(mad[c], 1e-12),
                distance=self._distance,
            )
            if peaks.shape[0] < min_beats:
                continue
            gaps = np.diff(peaks)
            typical = _median(gaps)
            heights = props["peak_heights"]
            height = _median(heights)
            # robust spreads: a pop or a knock among the beats must not hide them
            found[c] = (
                lo <= typical <= hi
                and _robust_sd(gaps) <= self.max_cv * typical
                and _robust_sd(heights) <= self.max_cv * height
            )
        return found
