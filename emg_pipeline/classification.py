"""Labelling of finished episodes: twitch or prolonged spasm, tonic or clonic.

* ``label``: an episode whose sustained activity lasts at least ``spasm_min_s``
  (2.0 s by default) is a ``spasm``, anything shorter a ``twitch``. No
  published spasm-specific cut-off exists; 2 s sits between the brief phasic
  bursts of sleep scoring (0.1-5 s) and the tonic criterion (half of a 30-s
  epoch), and it is a setting. The live ``sustained`` alert uses the same rule,
  so an episode that raised the alert always ends labelled ``spasm``.
* ``pattern``: a spasm whose short-time envelope is modulated at a clonus
  rhythm (``clonic_band_hz``, 3-8 Hz by default) with a depth of at least
  ``clonic_min_depth`` is ``clonic``; other spasms are ``tonic``; twitches are
  ``phasic``.
* Features: duration, peak and mean envelope (µV when the signal is
  calibrated, else multiples of the noise floor), burst count and burst rate
  from the short-time envelope, median frequency of the episode's spectrum
  (over its last ``spectrum_s`` seconds).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._jit import jit
from .detection import Detection
from .events import Episode
from .framing import History
from .settings import PipelineSettings

__all__ = ["Classifier", "burst_features", "median_frequency", "welch_power"]

_FINE_WINDOW_S = 0.02  # short-time envelope used to see individual bursts
_SEGMENT = 256  # samples per Welch segment
_MAX_SEGMENTS = 24  # Welch segments averaged at most (spread over the episode)
_MIN_SPECTRUM = 32  # fewer samples than this: no median frequency


# ---------------------------------------------------------------- kernels
#
# The features are computed by compiled kernels around numpy's FFT, with the
# arithmetic of the numpy expressions they replace, operation for operation:
# numpy's mean is a pairwise sum (``_pairwise_sum``), ``np.convolve`` a
# running dot product, a mean over the rows of a 2-D array one row added after
# another, ``np.interp`` the slope formula of its C loop. Order statistics
# come from bucket counts and a selection instead of a full sort (the same
# values). The FFTs, the cosines of the Hann window and the complex magnitudes
# stay numpy calls, so every feature equals the plain numpy computation bit
# for bit. One episode costs one kernel call, its FFTs and a few numpy calls;
# what remains is mostly the FFT of a spasm's short-time envelope, whose
# length (any number of frames) is often slow for pocketfft.


@jit
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:
    """Sum of ``a[lo:lo + n]`` (``n <= 128``): a leaf of numpy's pairwise summation."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    whole = n - n % 8
    while i < whole:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@jit
def _pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    """Sum of ``a[lo:lo + n]`` in the order of numpy's pairwise summation.

    numpy halves a range longer than 128 (the first half a multiple of 8) and
    adds the sums of the halves; this walks the same tree with an explicit
    stack (a recursive kernel cannot be cached).
    """
    if n <= 128:
        return _block_sum(a, lo, n)
    node_lo = np.empty(64, dtype=np.int64)
    node_n = np.empty(64, dtype=np.int64)
    node_step = np.zeros(64, dtype=np.int64)  # 0: left half next, 1: right half, 2: add
    sums = np.empty(64)
    depth = 1
    n_sums = 0
    node_lo[0] = lo
    node_n[0] = n
    node_step[0] = 0
    while depth:
        top = depth - 1
        m = node_n[top]
        if m <= 128:
            sums[n_sums] = _block_sum(a, node_lo[top], m)
            n_sums += 1
            depth -= 1
            continue
        half = m // 2
        half -= half % 8
        step = node_step[top]
        node_step[top] = step + 1
        if step == 2:
            n_sums -= 1
            sums[n_sums - 1] = sums[n_sums - 1] + sums[n_sums]
            depth -= 1
        else:
            node_lo[depth] = node_lo[top] + (half if step else 0)
            node_n[depth] = m - half if step else half
            node_step[depth] = 0
            depth += 1
    return sums[0]


@jit
def _mean(a: np.ndarray, lo: int, n: int) -> float:
    """``a[lo:lo + n].mean()`` as numpy computes it."""
    return (0.0 + _pairwise_sum(a, lo, n)) / n


@jit
def _select(a: np.ndarray, lo: int, hi: int, k: int) -> float:
    """Put the value of rank ``k`` of ``a[lo:hi + 1]`` at ``a[k]`` (smaller before, larger after).

    Hoare's selection with the middle element as pivot; a range that does not
    shrink fast enough is sorted instead. ``a`` holds no NaN.
    """
    rounds = 0
    while hi > lo:
        rounds += 1
        if rounds > 64:
            a[lo : hi + 1] = np.sort(a[lo : hi + 1])
            break
        pivot = a[(lo + hi) >> 1]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@jit
def _grid(i: int, n: int, step: float) -> float:
    """``np.linspace(0.0, 1.0, n)[i]``, with ``step = 1.0 / (n - 1)``."""
    if i == n - 1:
        return 1.0
    return i * step + 0.0


@jit
def _grid_index(x: float, n: int, step: float) -> int:
    """The ``j`` with ``grid[j] <= x < grid[j + 1]`` (``0 <= x < 1``, ``n >= 2``)."""
    j = min(max(int(x * (n - 1)), 0), n - 2)
    while j + 1 < n - 1 and _grid(j + 1, n, step) <= x:
        j += 1
    while j > 0 and _grid(j, n, step) > x:
        j -= 1
    return j


@jit
def _interp(x: float, xj: float, xk: float, yj: float, yk: float) -> float:
    """``np.interp`` between the points ``(xj, yj)`` and ``(xk, yk)``, as its C loop."""
    if xj == x:
        return yj
    slope = (yk - yj) / (xk - xj)
    res = slope * (x - xj) + yj
    if math.isnan(res):
        res = slope * (x - xk) + yk
        if math.isnan(res) and yj == yk:
            res = yj
    return res


@jit
def _deciles_by_selection(fine: np.ndarray, jl: int, jh: int) -> tuple[float, float, float, float]:
    """Values of ranks ``jl, jl + 1, jh, jh + 1`` of ``fine``, by selection (NaN sorted last)."""
    buf = fine.copy()
    for i in range(buf.shape[0]):
        if math.isnan(buf[i]):  # numpy sorts NaN last: take the ranks from a full sort
            buf = np.sort(buf)
            return buf[jl], buf[jl + 1], buf[jh], buf[jh + 1]
    l0 = _select(buf, 0, buf.shape[0] - 1, jl)
    l1 = np.min(buf[jl + 1 :])
    h0 = _select(buf, jl + 1, buf.shape[0] - 1, jh)
    h1 = np.min(buf[jh + 1 :])
    return l0, l1, h0, h1


@jit
def _deciles(fine: np.ndarray) -> tuple[float, float]:
    """10th and 90th percentiles of ``fine`` (``n >= 3``): sort, then ``np.interp`` on a grid.

    The grid ``np.linspace(0, 1, n)`` puts 0.1 and 0.9 between ranks ``jl, jl + 1``
    and ``jh, jh + 1`` with ``jl < jh`` (as ``n >= 3``).

    Only four ranks are needed. The values are counted into buckets of equal
    width between their minimum and maximum (a monotonic map, so a bucket's
    values all rank between those of its neighbours), and the ranks are
    selected among the few values of the buckets holding them.
    """
    n = fine.shape[0]
    step = 1.0 / (n - 1)
    jl = _grid_index(0.1, n, step)
    jh = _grid_index(0.9, n, step)
    finite = True
    for i in range(n):
        v = fine[i]
        finite &= v - v == 0.0
    # minimum and maximum, four of each side by side (independent chains)
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = fine[0]
    whole = n - n % 4
    for i in range(0, whole, 4):
        a0 = min(a0, fine[i])
        a1 = min(a1, fine[i + 1])
        a2 = min(a2, fine[i + 2])
        a3 = min(a3, fine[i + 3])
        b0 = max(b0, fine[i])
        b1 = max(b1, fine[i + 1])
        b2 = max(b2, fine[i + 2])
        b3 = max(b3, fine[i + 3])
    for i in range(whole, n):
        a0 = min(a0, fine[i])
        b0 = max(b0, fine[i])
    vmin = min(min(a0, a1), min(a2, a3))
    vmax = max(max(b0, b1), max(b2, b3))
    n_buckets = min(max(n >> 3, 16), 4096)
    scale = n_buckets / (vmax - vmin) if finite and vmax > vmin else 0.0
    if not (scale > 0.0 and math.isfinite(scale)):
        if finite and vmax == vmin:
            l0 = l1 = h0 = h1 = vmin
        else:
            l0, l1, h0, h1 = _deciles_by_selection(fine, jl, jh)
    else:
        top = n_buckets - 1
        which = np.empty(n, dtype=np.int32)
        for i in range(n):
            which[i] = min(int((fine[i] - vmin) * scale), top)
        # four interleaved counts: neighbours (often in one bucket) do not wait on each other
        counts = np.zeros((4, n_buckets), dtype=np.int64)
        for i in range(0, whole, 4):
            counts[0, which[i]] += 1
            counts[1, which[i + 1]] += 1
            counts[2, which[i + 2]] += 1
            counts[3, which[i + 3]] += 1
        for i in range(whole, n):
            counts[0, which[i]] += 1
        ranks = (jl, jl + 1, jh, jh + 1)  # ascending
        bucket = np.empty(4, dtype=np.int64)
        below = np.empty(4, dtype=np.int64)
        seen = 0
        r = 0
        for b in range(n_buckets):
            c = counts[0, b] + counts[1, b] + counts[2, b] + counts[3, b]
            while r < 4 and ranks[r] < seen + c:
                bucket[r] = b
                below[r] = seen
                r += 1
            seen += c
        # the values of the buckets holding ranks jl..jl+1, and of those holding jh..jh+1
        size_low = 0
        for b in range(bucket[0], bucket[1] + 1):
            size_low += counts[0, b] + counts[1, b] + counts[2, b] + counts[3, b]
        size_high = 0
        for b in range(bucket[2], bucket[3] + 1):
            size_high += counts[0, b] + counts[1, b] + counts[2, b] + counts[3, b]
        low = np.empty(size_low)
        high = np.empty(size_high)
        n_low = 0
        n_high = 0
        low0, low1, high0, high1 = bucket[0], bucket[1], bucket[2], bucket[3]
        for i in range(n):
            b = which[i]
            if low0 <= b <= low1:
                low[n_low] = fine[i]
                n_low += 1
            if high0 <= b <= high1:
                high[n_high] = fine[i]
                n_high += 1
        k = jl - below[0]
        l0 = _select(low, 0, n_low - 1, k)
        l1 = np.min(low[k + 1 : n_low])
        k = jh - below[2]
        h0 = _select(high, 0, n_high - 1, k)
        h1 = np.min(high[k + 1 : n_high])
    lo = _interp(0.1, _grid(jl, n, step), _grid(jl + 1, n, step), l0, l1)
    hi = _interp(0.9, _grid(jh, n, step), _grid(jh + 1, n, step), h0, h1)
    return lo, hi


@jit
def _burst_kernel(
    power: np.ndarray,
    n_avg: int,
    min_fine: float,
    spectrum: bool,
    df: float,
    band_lo: float,
    band_hi: float,
) -> tuple[int, int, float, int, int, np.ndarray, np.ndarray]:
    """Burst count and what the burst spectrum needs.

    Returns ``(count, status, mean, k0, k1, detrended, angles)``; ``status`` 1
    means the burst rate is to be read from the spectrum of
    ``detrended * hann`` in bins ``k0..k1`` (``angles`` are the Hann window's
    cosine arguments of its first half), 0 that there is none.
    """
    n = power.shape[0]
    empty = np.empty(0)
    if n < n_avg + 2:
        return 1, 0, math.nan, 0, -1, empty, empty
    n_fine = n - n_avg + 1
    w = 1.0 / n_avg
    # np.convolve(power, np.full(n_avg, w), "valid"): per value, a running sum from 0.0
    # over the window in order (written out for the usual window lengths)
    fine = np.empty(n_fine)
    if n_avg == 4:
        for i in range(n_fine):
            acc = (((0.0 + power[i] * w) + power[i + 1] * w) + power[i + 2] * w) + power[i + 3] * w
            fine[i] = math.sqrt(acc)
    elif n_avg == 5:
        for i in range(n_fine):
            acc = (((0.0 + power[i] * w) + power[i + 1] * w) + power[i + 2] * w) + power[i + 3] * w
            fine[i] = math.sqrt(acc + power[i + 4] * w)
    else:
        for i in range(n_fine):
            acc = 0.0
            for j in range(n_avg):
                acc += power[i + j] * w
            fine[i] = math.sqrt(acc)
    lo, hi = _deciles(fine)
    mid = 0.5 * (lo + hi)
    band = 0.15 * (hi - lo)
    up = mid + band
    down = mid - band
    count = 0
    prev = 0
    for i in range(n_fine):
        v = fine[i]
        if v > up:
            s = 1
        elif v < down:
            s = -1
        else:
            continue
        if s > prev:  # rising (or a first decided state that is high)
            count += 1
        prev = s
    count = max(count, 1)
    if n_fine < min_fine or not spectrum:
        return count, 0, math.nan, 0, -1, empty, empty
    fmean = _mean(fine, 0, n_fine)
    n_fft = _fast_len(n_fine)  # the spectrum is zero-padded to this length
    val = 1.0 / (n_fft * df)  # np.fft.rfftfreq(n_fft, df)[k] == k * val
    k0 = 0
    n_bins = n_fft // 2 + 1
    while k0 < n_bins and not k0 * val >= band_lo:
        k0 += 1
    k1 = k0 - 1
    while k1 + 1 < n_bins and (k1 + 1) * val <= band_hi:
        k1 += 1
    if k1 < k0 or fmean <= 0:
        return count, 0, fmean, 0, -1, empty, empty
    detrended = np.empty(n_fine)
    for i in range(n_fine):
        detrended[i] = fine[i] - fmean
    # np.hanning(n_fine): 0.5 + 0.5 * cos(pi * m / (n_fine - 1)), m = 1 - n_fine, 3 - n_fine, ...
    half = (n_fine + 1) // 2
    angles = np.empty(half)
    m_max = float(n_fine)
    for i in range(half):
        angles[i] = math.pi * ((1.0 - m_max) + 2.0 * i) / (m_max - 1.0)
    return count, 1, fmean, k0, k1, detrended, angles


@jit
def _fast_len(n: int) -> int:
    """Smallest length ``>= n`` whose only prime factors are 2, 3 and 5.

    An FFT of such a length is fast, and its plan is shared by many episode
    lengths (an FFT of a length with a large prime factor costs up to a
    hundred times more); ``scipy.fft.next_fast_len(n, real=True)``.
    """
    m = max(n, 1)
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


@jit
def _taper(x: np.ndarray, cosines: np.ndarray) -> None:
    """``x *= np.hanning(len(x))`` in place, from the cosines of the window's first half.

    ``np.hanning`` is ``0.5 + 0.5 * cos(angle)`` with angles symmetric about the
    middle, so the second half mirrors the first (the middle value of an odd
    length is 1).
    """
    n = x.shape[0]
    for i in range(cosines.shape[0]):
        h = 0.5 + 0.5 * cosines[i]
        x[i] = x[i] * h
        x[n - 1 - i] = x[n - 1 - i] * h


@jit
def _gather(buf: np.ndarray, row: int, n: int, channel: int, out: np.ndarray) -> None:
    """``out[:n]`` = column ``channel`` of the ring buffer ``buf`` from ``row`` on (wrapping)."""
    first = min(n, buf.shape[0] - row)
    for i in range(first):
        out[i] = buf[row + i, channel]
    for i in range(n - first):
        out[first + i] = buf[i, channel]


@jit
def _welch_segments(
    buf: np.ndarray, row: int, channel: int, starts: np.ndarray, window: np.ndarray
) -> np.ndarray:
    """De-meaned, windowed segments of a ring buffer's column, ``starts`` rows after ``row``."""
    nperseg = window.shape[0]
    n_seg = starts.shape[0]
    segs = np.empty((n_seg, nperseg))
    seg = np.empty(nperseg)
    for s in range(n_seg):
        _gather(buf, (row + starts[s]) % buf.shape[0], nperseg, channel, seg)
        mean = _mean(seg, 0, nperseg)
        for j in range(nperseg):
            segs[s, j] = (seg[j] - mean) * window[j]
    return segs


@jit
def _median_kernel(spec: np.ndarray, norm: float, odd: bool, val: float) -> float:
    """Median frequency of the Welch density of the segment spectra ``spec``.

    ``norm`` is ``fs * sum(window ** 2)``, ``odd`` whether the segment length
    is odd, ``val`` the bin width.
    """
    n_seg, n_bins = spec.shape
    power = np.empty(n_bins)
    for j in range(n_bins):
        v = spec[0, j]
        power[j] = v.real * v.real + v.imag * v.imag
    for s in range(1, n_seg):
        for j in range(n_bins):
            v = spec[s, j]
            power[j] += v.real * v.real + v.imag * v.imag
    last = n_bins if odd else n_bins - 1
    for j in range(n_bins):
        p = power[j] / n_seg / norm
        if 1 <= j < last:
            p *= 2.0
        power[j] = p
    total = np.empty(n_bins)
    acc = power[0]
    total[0] = acc
    for j in range(1, n_bins):
        acc = acc + power[j]
        total[j] = acc
    if total[n_bins - 1] <= 0:
        return math.nan
    half = 0.5 * total[n_bins - 1]
    # np.searchsorted(total, half): binary search, NaN sorting last
    lo = 0
    hi = n_bins
    while lo < hi:
        mid = lo + ((hi - lo) >> 1)
        t = total[mid]
        if t < half or (half != half and t == t):
            lo = mid + 1
        else:
            hi = mid
    k = lo
    below = total[k - 1] if k else 0.0
    width = val - 0.0
    frac = (half - below) / power[k] if power[k] > 0 else 0.5
    return k * val - 0.5 * width + frac * width


@jit
def _episode_kernel(
    env_buf: np.ndarray,
    env_at: tuple[int, int, int],
    power_buf: np.ndarray,
    power_at: tuple[int, int, int],
    sample_buf: np.ndarray,
    sample_at: tuple[int, int, int],
    starts: np.ndarray,
    window: np.ndarray,
    n_avg: int,
    min_fine: float,
    spectrum: bool,
    df: float,
    band_lo: float,
    band_hi: float,
) -> tuple[float, float, int, int, float, int, int, np.ndarray, np.ndarray, np.ndarray]:
    """Everything of one episode up to its FFTs, in one call (see :meth:`Classifier.classify`).

    Each history is a ring buffer and ``(row, n_rows, channel)``: the
    episode's values are ``n_rows`` rows of column ``channel`` from ``row`` on.
    """
    n_env = env_at[1]
    env = np.empty(n_env)
    _gather(env_buf, env_at[0], n_env, env_at[2], env)
    peak = math.nan
    mean = math.nan
    if n_env:
        peak = env[0]
        for i in range(1, n_env):
            v = env[i]
            if v > peak or math.isnan(v):  # NaN propagates, as in np.max
                peak = v
        mean = _mean(env, 0, n_env)
    power = np.empty(power_at[1])
    _gather(power_buf, power_at[0], power_at[1], power_at[2], power)
    count, status, fmean, k0, k1, detrended, angles = _burst_kernel(
        power, n_avg, min_fine, spectrum, df, band_lo, band_hi
    )
    segs = _welch_segments(sample_buf, sample_at[0], sample_at[2], starts, window)
    return peak, mean, count, status, fmean, k0, k1, detrended, angles, segs


# ---------------------------------------------------------------- helpers

_NO_STARTS = np.empty(0, dtype=np.int64)
_NO_STARTS.flags.writeable = False


@functools.lru_cache(maxsize=64)
def _periodic_hann(nperseg: int) -> tuple[np.ndarray, float]:
    """Periodic Hann window of ``nperseg`` samples (scipy's default ``"hann"``) and its energy."""
    window = np.hanning(nperseg + 1)[:-1]
    window.flags.writeable = False  # shared between callers
    return window, float(window @ window)


@functools.lru_cache(maxsize=512)
def _segment_starts(n_seg: int, step: int, max_segments: int | None) -> np.ndarray:
    """First samples of the Welch segments used: all, or ``max_segments`` spread evenly."""
    starts = np.arange(n_seg) * step
    if max_segments is not None and n_seg > max_segments:
        starts = starts[np.linspace(0, n_seg - 1, max_segments).round().astype(np.int64)]
    starts = starts.astype(np.int64)
    starts.flags.writeable = False  # shared between callers
    return starts


def _ring(history: History, start: int, stop: int, channel: int) -> tuple[np.ndarray, tuple]:
    """Rows ``[start, stop)`` of one channel, clipped as :meth:`History.read` clips them.

    Returns a ring buffer and ``(row, n_rows, channel)`` in it. The history's
    own buffer is addressed in place (no copy of a long episode's column); a
    history whose storage is laid out differently is read with
    :meth:`History.read`.
    """
    buf = getattr(history, "_buf", None)
    if (
        type(history) is History
        and isinstance(buf, np.ndarray)
        and buf.shape == (history.capacity, history.n_channels)
        and buf.dtype == np.float64
    ):
        end = history.end
        lo = max(start, end - history.capacity, 0)
        n = min(stop, end) - lo
        return buf, (lo % history.capacity, max(n, 0), channel)
    x = np.ascontiguousarray(history.read(start, stop, channel=channel), dtype=np.float64)
    return x.reshape(-1, 1), (0, x.shape[0], 0)


def _welch_plan(n: int, nperseg: int, max_segments: int | None) -> np.ndarray:
    """Segment starts of a Welch estimate over ``n`` samples (half-overlapping segments)."""
    step = nperseg - nperseg // 2
    return _segment_starts(1 + (n - nperseg) // step, step, max_segments)


def _spectrum_median(segs: np.ndarray, fs: float, nperseg: int, energy: float) -> float:
    """Median frequency of the Welch density of windowed segments (rows of ``segs``)."""
    return _median_kernel(
        np.fft.rfft(segs), fs * energy, nperseg % 2 == 1, 1.0 / (nperseg * (1.0 / fs))
    )


def _burst_rate(
    detrended: np.ndarray, angles: np.ndarray, k0: int, k1: int, mean: float, frame_rate: float
) -> tuple[float, float]:
    """Strongest envelope modulation in bins ``k0..k1`` and its depth (``detrended`` is used up).

    The tapered envelope is zero-padded to a length with small prime factors
    (:func:`_fast_len`): a slightly finer grid of the same spectrum.
    """
    n = detrended.shape[0]
    n_fft = _fast_len(n)
    _taper(detrended, np.cos(angles))
    magnitude = np.abs(np.fft.rfft(detrended, n=n_fft)[k0 : k1 + 1])
    j = int(np.argmax(magnitude))
    rate = (k0 + j) * (1.0 / (n_fft * (1.0 / frame_rate)))
    # Hann window: coherent gain 0.5, so amplitude = 2 * |X| / (0.5 * N)
    depth = 4.0 * float(magnitude[j]) / n / mean
    return rate, depth


# ---------------------------------------------------------------- public

def median_frequency(x: np.ndarray, fs: float, max_segments: int = _MAX_SEGMENTS) -> float:
    """Median frequency (Hz) of the power spectrum of ``x``; NaN if too short.

    The spectrum is a Welch estimate over at most ``max_segments`` segments of
    256 samples spread evenly over ``x``.

    Examples
    --------
    >>> t = np.arange(2000) / 1000.0
    >>> round(median_frequency(np.sin(2 * np.pi * 80 * t), 1000.0))
    80
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = x.shape[0]
    if n < _MIN_SPECTRUM:
        return math.nan
    nperseg = min(_SEGMENT, n)
    window, energy = _periodic_hann(nperseg)
    segs = _welch_segments(x.reshape(-1, 1), 0, 0, _welch_plan(n, nperseg, max_segments), window)
    return float(_spectrum_median(segs, float(fs), nperseg, energy))


def welch_power(
    x: np.ndarray, fs: float, nperseg: int, max_segments: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectrum of a 1-D signal: Hann segments, half overlap, each de-meaned.

    The same estimate as ``scipy.signal.welch(x, fs, nperseg=nperseg)`` (one-sided
    density), computed with one batched FFT instead of a per-segment loop. With
    ``max_segments``, at most that many segments, evenly spread over ``x``, are
    averaged (a bounded cost for long episodes).

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal(3000)
    >>> f, p = welch_power(x, 1000.0, 256)
    >>> from scipy import signal
    >>> f2, p2 = signal.welch(x, fs=1000.0, nperseg=256)
    >>> bool(np.allclose(p, p2)) and bool(np.allclose(f, f2))
    True
    """
    starts = _welch_plan(x.shape[0], nperseg, max_segments)
    segs = x[starts[:, None] + np.arange(nperseg)]
    window, energy = _periodic_hann(nperseg)
    spec = np.fft.rfft((segs - segs.mean(axis=1, keepdims=True)) * window, axis=1)
    power = (spec.real**2 + spec.imag**2).mean(axis=0) / (fs * energy)
    if nperseg % 2:
        power[1:] *= 2.0
    else:
        power[1:-1] *= 2.0
    return np.fft.rfftfreq(nperseg, 1.0 / fs), power


def burst_features(
    power: np.ndarray, frame_rate: float, band_hz: tuple[float, float]
) -> tuple[int, float, float]:
    """Burst count, dominant burst rate and modulation depth of an episode.

    Parameters
    ----------
    power : ndarray, shape (n_frames,)
        Mean square of each frame of the episode.
    frame_rate : float
        Frames per second.
    band_hz : tuple of float
        Range in which a burst rhythm is looked for.

    Returns
    -------
    burst_count : int
        Rising crossings of the short-time envelope through its mid level.
    rate_hz : float
        Frequency of the strongest envelope modulation in ``band_hz`` (NaN if
        the episode is shorter than two cycles of the band's lowest rate).
    depth : float
        Amplitude of that modulation relative to the mean envelope.
    """
    n_avg = max(1, round(_FINE_WINDOW_S * frame_rate))
    count, status, mean, k0, k1, detrended, angles = _burst_kernel(
        np.ascontiguousarray(power, dtype=np.float64),
        n_avg,
        2.0 * frame_rate / band_hz[0],
        True,
        1.0 / frame_rate,
        float(band_hz[0]),
        min(band_hz[1], 0.45 * frame_rate),
    )
    if status == 0:
        return count, math.nan, 0.0
    rate, depth = _burst_rate(detrended, angles, k0, k1, mean, frame_rate)
    return count, rate, depth


class Classifier:
    """Turn the detector's ``end`` decisions into labelled :class:`Episode` values.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    frame_len : int
        Samples per frame.
    settings : PipelineSettings
        Spasm boundary and clonus rules.
    calibrated : bool
        Whether envelope values are µV.
    channels : sequence of str
        Channel names.
    """

    def __init__(
        self,
        fs: float,
        frame_len: int,
        settings: PipelineSettings,
        calibrated: bool,
        channels: tuple[str, ...],
    ) -> None:
        self.fs = float(fs)
        self.frame_len = int(frame_len)
        self.frame_s = self.frame_len / self.fs
        self.settings = settings
        self.calibrated = bool(calibrated)
        self.channels = tuple(channels)
        fr = 1.0 / self.frame_s
        self._spasm_frames = max(1, math.ceil(settings.spasm_min_s * fr - 1e-9))
        self._derived_for: PipelineSettings | None = None

    def reset(self) -> None:
        """The classifier carries no state."""

    def _derive(self) -> None:
        """Constants of the burst analysis and the spectrum (from the settings)."""
        s = self.settings
        frame_rate = 1.0 / self.frame_s
        lo, hi = s.clonic_band_hz
        self._frame_rate = frame_rate
        self._burst_args = (
            max(1, round(_FINE_WINDOW_S * frame_rate)),  # frames of the short-time envelope
            2.0 * frame_rate / lo,  # fewest of its values with a rhythm looked for
            1.0 / frame_rate,
            float(lo),
            min(hi, 0.45 * frame_rate),
        )
        self._spectrum_len = round(s.spectrum_s * self.fs)
        self._derived_for = s

    def classify(
        self,
        det: Detection,
        envelope: History,
        frame_power: History,
        samples: History,
    ) -> Episode:
        """Label one finished episode from the recent history of the stream."""
        s = self.settings
        if s is not self._derived_for:
            self._derive()
        c = det.channel
        on, off = det.onset_frame, max(det.offset_frame, det.onset_frame + 1)
        env_buf, env_at = _ring(envelope, on, off, c)
        power_buf, power_at = _ring(frame_power, on, off, c)
        stop = off * self.frame_len
        sample_buf, sample_at = _ring(
            samples, max(on * self.frame_len, stop - self._spectrum_len), stop, c
        )
        n_frames = off - on
        label = "spasm" if n_frames >= self._spasm_frames else "twitch"
        n = sample_at[1]
        if n >= _MIN_SPECTRUM:
            nperseg = min(_SEGMENT, n)
            window, energy = _periodic_hann(nperseg)
            starts = _welch_plan(n, nperseg, _MAX_SEGMENTS)
        else:
            nperseg, energy = _SEGMENT, 0.0
            window, starts = _periodic_hann(_SEGMENT)[0], _NO_STARTS
        n_avg, min_fine, df, band_lo, band_hi = self._burst_args
        # the burst rate of a twitch is not reported: its spectrum is skipped
        peak, mean, count, status, fmean, k0, k1, detrended, angles, segs = _episode_kernel(
            env_buf, env_at, power_buf, power_at, sample_buf, sample_at, starts, window,
            n_avg, min_fine, label == "spasm", df, band_lo, band_hi,
        )
        rate, depth = math.nan, 0.0
        if status:
            rate, depth = _burst_rate(detrended, angles, k0, k1, fmean, self._frame_rate)
        mdf = _spectrum_median(segs, self.fs, nperseg, energy) if n >= _MIN_SPECTRUM else math.nan
        floor = det.floor if math.isfinite(det.floor) and det.floor > 0 else math.nan
        scale = 1.0 if self.calibrated else (1.0 / floor if math.isfinite(floor) else math.nan)
        if label == "twitch":
            pattern = "phasic"
        elif math.isfinite(rate) and depth >= s.clonic_min_depth and count >= 3:
            pattern = "clonic"
        else:
            pattern = "tonic"
        onset_s = on * self.frame_s
        offset_s = off * self.frame_s
        return Episode(
            channel=self.channels[c],
            onset_s=onset_s,
            offset_s=offset_s,
            duration_s=offset_s - onset_s,
            label=label,
            pattern=pattern,
            peak=peak * scale if env_at[1] else math.nan,
            mean=mean * scale if env_at[1] else math.nan,
            unit="uV" if self.calibrated else "x_floor",
            burst_count=int(count),
            burst_rate_hz=rate if label == "spasm" else math.nan,
            median_freq_hz=float(mdf),
            floor=floor,
            truncated=det.truncated,
        )
