"""OpenSignals recordings (BITalino, PLUX biosignalsplux): TXT and HDF5 layouts.

Layouts
-------
TXT
    Line 1 ``# OpenSignals Text File Format``, line 2 ``# {JSON}`` keyed by the
    device MAC (``"sampling rate"``, ``"column"``, ``"channels"``, ``"label"``,
    ``"sensor"``, ``"resolution"``, ``"device"``, ``"date"``, ``"time"``), line 3
    ``# EndOfHeader``, then tab-separated integer rows. The analog channels are
    the last ``len(channels)`` columns of the device's ``"column"`` list.
HDF5
    One top-level group per device (named by its MAC) whose attributes hold
    ``'sampling rate'``, ``'resolution'``, ``'channels'``, ``'device'``,
    ``'date'``, ``'time'``; samples in ``<MAC>/raw/channel_N`` for each N in
    ``channels`` (never assume ``channel_1``), each of shape ``(n, 1)``.
    The ``support/level_*`` decimations are ignored.

With several devices, the first one with an EMG channel is read (else the first).

Channels
--------
Channels whose sensor is ``EMG...`` when there are any; otherwise every analog
channel. ``'RAW'`` (or no sensor name), which BITalino writes when the sensor
type was not set in OpenSignals, is taken to be EMG, since this package reads
EMG recordings.

Units
-----
EMG (and RAW) channels are converted to µV with the PLUX/BITalino EMG transfer
function::

    EMG[V] = (ADC / 2**n - 1/2) * VCC / G_EMG

with ``n`` the channel's ADC resolution in bits (from the file: 10 for BITalino
A1-A4, 16 for biosignalsplux) and

* BITalino (``device`` contains ``bitalino``): VCC = 3.3 V, G_EMG = 1009
  (BITalino EMG sensor datasheet; range ±1.64 mV);
* PLUX biosignalsplux and other PLUX devices: VCC = 3 V, G_EMG = 1000
  (PLUX EMG sensor datasheet; range ±1.5 mV).

µV = EMG[V] · 1e6. When any selected channel is another kind of sensor, no
conversion is made and the unit is ``'counts'``. The constants used are in
``metadata['transfer_function']``.

Start time
----------
From ``date`` and ``time`` (local time of the acquiring computer; naive datetime).
"""

from __future__ import annotations

import json
import mmap
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from emg_pipeline.errors import RecordingError

from ._base import RecordingInfo, RecordingReader, excerpt, read_head, resolve_fs, text_of
from ._table import TableSpec, iter_table, table_spec

__all__ = ["OpenSignalsReader", "emg_transfer_uv"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TXT_MAGIC = "# OpenSignals Text File Format"

#: (VCC in volts, EMG sensor gain) per device family
BITALINO_EMG = (3.3, 1009.0)
PLUX_EMG = (3.0, 1000.0)


def emg_transfer_uv(adc: np.ndarray, bits: int, vcc: float, gain: float) -> np.ndarray:
    """Convert EMG ADC counts to µV: ``(adc / 2**bits - 1/2) * vcc / gain * 1e6``.

    Examples
    --------
    >>> emg_transfer_uv(np.array([512.0]), 10, 3.3, 1009.0)
    array([0.])
    >>> round(float(emg_transfer_uv(np.array([1023.0]), 10, 3.3, 1009.0)[0]), 1)
    1632.1
    """
    return (np.asarray(adc, dtype=np.float64) / 2.0**bits - 0.5) * (vcc / gain * 1e6)


def is_hdf5(head: bytes) -> bool:
    """Tell whether ``head`` holds the HDF5 signature (at 0 or a user-block offset)."""
    return any(head[k : k + 8] == HDF5_SIGNATURE for k in (0, 512, 1024, 2048, 4096, 8192))


_GCOL = b"GCOL\x01\x00\x00\x00"  # a global heap collection, version 1


def check_global_heaps(path: Path) -> None:
    """Refuse an HDF5 file whose global heap the HDF5 library would loop on forever.

    Variable-length strings (OpenSignals' ``date``, ``time`` and ``device``
    attributes) live in global heap collections. The HDF5 library walks a
    collection's objects by their stated sizes and never moves on from a free
    space object of size 0, which a damaged collection can hold: reading such an
    attribute then never returns. Each collection (``GCOL``, version 1) is walked
    here the same way first, and one whose objects do not tile it is refused.

    Raises
    ------
    RecordingError
        If a global heap collection is damaged.
    """
    with open(path, "rb") as handle:
        head = handle.read(8192 + 16)
        base = next(
            (k for k in (0, 512, 1024, 2048, 4096, 8192) if head[k : k + 8] == HDF5_SIGNATURE),
            None,
        )
        if base is None or len(head) < base + 16:
            return
        # superblock versions 0 and 1 give the size of lengths at byte 14, later ones at 10
        lengths = head[base + 14] if head[base + 8] < 2 else head[base + 10]
        if lengths not in (2, 4, 8):
            return  # the library refuses such a superblock itself
        try:
            view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # an empty file cannot be mapped
            return
        with view:
            at = view.find(_GCOL)
            while at >= 0:
                if not _heap_tiles(view, at, lengths):
                    raise RecordingError(
                        path, f"malformed HDF5 file: damaged global heap collection at byte {at}"
                    )
                at = view.find(_GCOL, at + 1)


def _heap_tiles(view: mmap.mmap, at: int, lengths: int) -> bool:
    """Whether the objects of the collection at ``at`` tile it, as the HDF5 library walks them."""
    length = {2: "<H", 4: "<I", 8: "<Q"}[lengths]
    header = 8 + lengths
    if at + header > len(view):
        return True  # a collection cut by the end of the file: the library reports it
    (size,) = struct.unpack_from(length, view, at + 8)
    end = at + size
    p = at + header
    object_header = 8 + lengths
    while p < end:
        if p + object_header > end:
            return True  # the tail is too small for an object: free space
        if p + object_header > len(view):
            return True  # past the end of the file: the library reports it
        (index,) = struct.unpack_from("<H", view, p)
        (object_size,) = struct.unpack_from(length, view, p + 8)
        need = object_header + -(-object_size // 8) * 8 if index else object_size
        if need == 0 or p + need > end:
            return False
        p += need
    return True


@dataclass(frozen=True)
class _Device:
    """The part of an OpenSignals header that the reader needs, for one device."""

    name: str
    attrs: Mapping[str, Any]
    channels: tuple[int, ...]
    labels: tuple[str, ...]
    sensors: tuple[str, ...]
    bits: tuple[int, ...]


#: ADC resolutions accepted, in bits
_BITS = range(1, 65)


def _ints(path: Path, device: str, key: str, value: object) -> tuple[int, ...]:
    """The integers of a header entry (a list, an array or one number).

    Raises
    ------
    RecordingError
        If an item is not an integer (text, NaN, infinity, a nested object).
    """
    try:
        return tuple(int(c) for c in np.atleast_1d(np.asarray(value)))
    except (TypeError, ValueError, OverflowError):
        raise RecordingError(
            path, f"OpenSignals device {excerpt(device)}: {key!r} is {excerpt(value)}, not a list "
            "of integers"
        ) from None


def _texts(path: Path, device: str, key: str, value: object) -> tuple[str, ...]:
    """The names of a header entry (a list of names, or one name)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(x) for x in value)
    raise RecordingError(
        path, f"OpenSignals device {excerpt(device)}: {key!r} is {excerpt(value)}, not a list "
        "of names"
    )


def _device(
    path: Path, name: str, attrs: Mapping[str, Any], sensors: Sequence[str],
    labels: Sequence[str],
) -> _Device:
    channels = _ints(path, name, "channels", attrs.get("channels", []))
    if not channels:
        raise RecordingError(path, f"device {excerpt(name)}: no analog channel in the header")
    resolution = _ints(path, name, "resolution", attrs.get("resolution", []))
    # BITalino lists one resolution per column (nSeq, I1, I2, O1, O2, A1..), PLUX one per
    # channel: in both the analog channels are the last entries
    bits = tuple(resolution[-len(channels) :]) if len(resolution) >= len(channels) else ()
    wrong = [b for b in bits if b not in _BITS]
    if wrong:
        raise RecordingError(
            path, f"device {excerpt(name)}: an ADC resolution of {excerpt(wrong[0])} bits"
        )
    return _Device(
        name=name,
        attrs=attrs,
        channels=channels,
        labels=tuple(str(x) for x in labels),
        sensors=tuple(str(x) for x in sensors),
        bits=bits,
    )


class OpenSignalsReader(RecordingReader):
    """Reader of OpenSignals TXT and HDF5 files (format ``'opensignals'``).

    See the module docstring for the layouts and the EMG transfer function.
    """

    format: ClassVar[str] = "opensignals"
    extensions: ClassVar[tuple[str, ...]] = (".txt", ".h5", ".hdf5")

    _spec: TableSpec | None = None
    _h5: Any = None
    _datasets: tuple[Any, ...] = ()
    _scale: tuple[tuple[int, float, float], ...] | None = None
    _selected: tuple[int, ...] = ()

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` is an OpenSignals TXT header or any HDF5 file."""
        if is_hdf5(head):
            return True
        text = text_of(head[:200])
        return text is not None and text.lstrip("\ufeff").startswith(TXT_MAGIC)

    def _inspect(self, fs: float | None) -> RecordingInfo:
        try:
            return self._describe(fs)
        except BaseException:
            self.close()
            raise

    def _describe(self, fs: float | None) -> RecordingInfo:
        head = read_head(self.path)
        if is_hdf5(head):
            device, n_samples = self._open_hdf5()
            layout = "hdf5"
        else:
            device = self._open_txt(head)
            n_samples = None
            layout = "txt"
        path = self.path
        stated = device.attrs.get("sampling rate")
        try:
            stated_hz = None if stated is None else float(stated)
        except (TypeError, ValueError):
            raise RecordingError(
                path, f"OpenSignals sampling rate {excerpt(stated)} is not a number"
            ) from None
        rate = resolve_fs(path, stated_hz, fs, "the OpenSignals header")
        selected = self._selected
        sensors = [device.sensors[k] if k < len(device.sensors) else "" for k in selected]
        family = str(device.attrs.get("device", ""))
        vcc, gain = BITALINO_EMG if "bitalino" in family.lower() else PLUX_EMG
        emg_like = all(s.upper().startswith("EMG") or s.upper() in ("RAW", "") for s in sensors)
        metadata: dict[str, object] = {
            "layout": layout,
            "device": family,
            "device_name": device.name,
            "channel_numbers": tuple(device.channels[k] for k in selected),
            "sensors": tuple(sensors),
            "resolution_bits": tuple(device.bits[k] for k in selected) if device.bits else (),
            "skipped_channels": tuple(
                device.labels[k] if k < len(device.labels) else str(device.channels[k])
                for k in range(len(device.channels))
                if k not in selected
            ),
            "firmware_version": str(device.attrs.get("firmware version", "")),
        }
        if emg_like and device.bits:
            self._scale = tuple((device.bits[k], vcc, gain) for k in selected)
            metadata["transfer_function"] = "uV = (ADC / 2**n - 1/2) * VCC / G_EMG * 1e6"
            metadata["vcc_v"] = vcc
            metadata["emg_gain"] = gain
            unit = "uV"
        else:
            metadata["transfer_function"] = None
            unit = "counts"
        names = tuple(
            device.labels[k]
            if k < len(device.labels) and device.labels[k]
            else f"A{device.channels[k]}"
            for k in selected
        )
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=rate,
            channels=names,
            unit=unit,
            n_samples=n_samples,
            start_time=_start_time(device.attrs),
            metadata=metadata,
        )

    # -- TXT -----------------------------------------------------------------------------------

    def _open_txt(self, head: bytes) -> _Device:
        path = self.path
        text = text_of(head)
        if text is None or not text.lstrip("\ufeff").startswith(TXT_MAGIC):
            raise RecordingError(path, f"not an OpenSignals file: first line is not {TXT_MAGIC!r}")
        lines = text.lstrip("\ufeff").splitlines()
        try:
            end = next(i for i, line in enumerate(lines) if line.strip() == "# EndOfHeader")
        except StopIteration:
            raise RecordingError(
                path, "'# EndOfHeader' line missing from the OpenSignals header"
            ) from None
        json_line = next((line for line in lines[1:end] if line.lstrip("# ").startswith("{")), None)
        if json_line is None:
            raise RecordingError(path, "no JSON header line in the OpenSignals header")
        try:
            header = json.loads(json_line.lstrip("# "))
        except json.JSONDecodeError as error:
            raise RecordingError(
                path, f"OpenSignals JSON header is malformed: {error.msg}"
            ) from None
        except RecursionError:
            raise RecordingError(
                path, "OpenSignals JSON header is malformed: nested too deeply"
            ) from None
        if not isinstance(header, dict) or not header:
            raise RecordingError(path, "OpenSignals JSON header holds no device")
        devices: list[tuple[_Device, int]] = []
        offset = 0
        for name, attrs in header.items():
            if not isinstance(attrs, dict):
                raise RecordingError(
                    path, f"OpenSignals header entry {excerpt(name)} is not an object"
                )
            columns = _texts(path, name, "column", attrs.get("column", []))
            dev = _device(
                path, name, attrs, _texts(path, name, "sensor", attrs.get("sensor", [])),
                _texts(path, name, "label", attrs.get("label", [])),
            )
            n_analog = len(dev.channels)
            if len(columns) < n_analog:
                raise RecordingError(
                    path, f"device {excerpt(name)}: {n_analog} channels but {len(columns)} columns"
                )
            devices.append((dev, offset + len(columns) - n_analog))
            offset += len(columns)
        device, first_col = _pick(devices)
        self._selected = _select(device)
        self._spec = table_spec(
            path,
            skiprows=end + 1,
            sep="\t",
            usecols=[first_col + k for k in self._selected],
            names=[device.labels[k] if k < len(device.labels) else str(k) for k in self._selected],
        )
        return device

    # -- HDF5 ----------------------------------------------------------------------------------

    def _open_hdf5(self) -> tuple[_Device, int]:
        path = self.path
        try:
            import h5py  # only this reader needs HDF5
        except ImportError:
            raise RecordingError(path, "reading HDF5 needs h5py: pip install h5py") from None
        check_global_heaps(path)
        try:
            self._h5 = h5py.File(path, "r")
        except OSError as error:
            raise RecordingError(path, f"cannot open HDF5 file: {_line(error)}") from None
        try:
            return self._hdf5_device(h5py)
        except _HDF5_ERRORS as error:
            # what h5py raises on a damaged file's groups, attributes or dataset headers
            raise RecordingError(path, f"malformed HDF5 file: {_line(error)}") from None

    def _hdf5_device(self, h5py: Any) -> tuple[_Device, int]:
        path = self.path
        devices: list[tuple[_Device, int]] = []
        for name, group in self._h5.items():
            if (
                not isinstance(group, h5py.Group)
                or "raw" not in group
                or "sampling rate" not in group.attrs
            ):
                continue
            attrs = _attributes(h5py, path, group, _DEVICE_ATTRIBUTES)
            channels = _ints(path, name, "channels", attrs.get("channels", []))
            raw = group["raw"]
            sensors, labels = [], []
            for c in channels:
                key = f"channel_{c}"
                if key not in raw:
                    raise RecordingError(
                        path, f"OpenSignals HDF5: {excerpt(name)}/raw/{excerpt(key)} missing"
                    )
                described = _attributes(h5py, path, raw[key], ("sensor", "label"))
                sensors.append(_text(described.get("sensor", "")))
                labels.append(_text(described.get("label", "")) or f"A{c}")
            devices.append((_device(path, name, attrs, sensors, labels), 0))
        if not devices:
            raise RecordingError(path, "HDF5 file without an OpenSignals device group (<MAC>/raw)")
        device, _ = _pick(devices)
        self._selected = _select(device)
        raw = self._h5[device.name]["raw"]
        self._datasets = tuple(raw[f"channel_{device.channels[k]}"] for k in self._selected)
        file_size = path.stat().st_size
        for d in self._datasets:
            if (d.ndim not in (1, 2) or (d.ndim == 2 and d.shape[1] == 0)
                    or d.dtype.kind not in "iufb"):
                raise RecordingError(
                    path, f"OpenSignals HDF5: {excerpt(d.name)} is not a column of numbers "
                    f"(shape {d.shape}, type {d.dtype})"
                )
            # stored plainly (not chunked, so not filtered), a dataset cannot be larger
            # than the file; chunked and compressed, not more than deflate's ratio (about
            # 1000) larger
            limit = file_size * (1 if d.chunks is None else 1024)
            if d.size * d.dtype.itemsize > limit:
                raise RecordingError(
                    path, f"OpenSignals HDF5: {excerpt(d.name)} claims {d.shape[0]} samples, "
                    "more than the file holds"
                )
        lengths = {d.shape[0] for d in self._datasets}
        if len(lengths) != 1:
            raise RecordingError(
                path, f"OpenSignals HDF5 channels differ in length: {sorted(lengths)}"
            )
        return device, lengths.pop()

    # -- streaming -----------------------------------------------------------------------------

    def _convert(self, block: np.ndarray) -> np.ndarray:
        if self._scale is None:
            return block
        out = np.empty_like(block)
        for j, (bits, vcc, gain) in enumerate(self._scale):
            out[:, j] = emg_transfer_uv(block[:, j], bits, vcc, gain)
        return out

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        if self._spec is not None:
            for block in iter_table(self.path, self._spec, size_hint):
                yield self._convert(block)
            return
        if self._h5 is None:
            raise RecordingError(self.path, "reader is closed")
        n = self._datasets[0].shape[0]
        for start in range(0, n, size_hint):
            stop = min(n, start + size_hint)
            try:
                columns = [
                    np.asarray(d[start:stop]).reshape(stop - start, -1)[:, 0]
                    for d in self._datasets
                ]
            except _HDF5_ERRORS as error:
                raise RecordingError(
                    self.path, f"cannot read samples {start}..{stop} of the HDF5 file: "
                    f"{_line(error)}"
                ) from None
            yield self._convert(np.column_stack(columns).astype(np.float64))

    def close(self) -> None:
        """Close the HDF5 file, if one is open."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
            self._datasets = ()


#: what h5py raises on a damaged file (it reports HDF5 library errors as these)
_HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)
#: the attributes of a device group that the reader uses
_DEVICE_ATTRIBUTES = (
    "sampling rate", "channels", "resolution", "device", "date", "time", "firmware version"
)
#: the most bytes an attribute may hold (OpenSignals' are a few numbers or a short text)
_MAX_ATTRIBUTE_BYTES = 1 << 20


def _attributes(h5py: Any, path: Path, obj: Any, names: Sequence[str]) -> dict[str, Any]:
    """The values of the attributes ``names`` of ``obj`` that exist, checked before reading.

    Only numbers and texts of a sensible size are read: the HDF5 library can
    crash the process converting an attribute of another type (a damaged file
    can turn a text into a variable-length sequence), and a damaged dataspace
    can claim any size.

    Raises
    ------
    RecordingError
        If an attribute has another type or claims more than
        :data:`_MAX_ATTRIBUTE_BYTES`.
    """
    out: dict[str, Any] = {}
    for name in names:
        if name not in obj.attrs:
            continue
        attribute = obj.attrs.get_id(name)
        kind = attribute.get_type()
        where = f"OpenSignals HDF5: attribute {name!r} of {excerpt(obj.name)}"
        if not isinstance(kind, h5py.h5t.TypeIntegerID | h5py.h5t.TypeFloatID
                          | h5py.h5t.TypeStringID):
            raise RecordingError(path, f"{where} is not a number or a text")
        count = int(np.prod(attribute.shape, dtype=object)) if attribute.shape else 1
        if count * kind.get_size() > _MAX_ATTRIBUTE_BYTES:
            raise RecordingError(path, f"{where} claims {count} values")
        out[name] = obj.attrs[name]
    return out


def _line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _pick(devices: Sequence[tuple[_Device, int]]) -> tuple[_Device, int]:
    """The first device with an EMG sensor, else the first device."""
    for dev, offset in devices:
        if any(s.upper().startswith("EMG") for s in dev.sensors):
            return dev, offset
    return devices[0]


def _select(device: _Device) -> tuple[int, ...]:
    """Indices of the channels to read: the EMG ones if any, else all."""
    emg = tuple(
        k
        for k, s in enumerate(device.sensors[: len(device.channels)])
        if s.upper().startswith("EMG")
    )
    return emg or tuple(range(len(device.channels)))


def _start_time(attrs: Mapping[str, Any]) -> datetime | None:
    date = _text(attrs.get("date", "")).strip()
    clock = _text(attrs.get("time", "")).strip()
    match_d = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", date)
    match_t = re.fullmatch(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,3}))?", clock)
    if not match_d:
        return None
    try:
        day = datetime(int(match_d[1]), int(match_d[2]), int(match_d[3]))
    except ValueError:
        return None
    if match_t:
        # OpenSignals does not zero-pad any field ("7:5:4.409"), milliseconds included
        day += timedelta(
            hours=int(match_t[1]),
            minutes=int(match_t[2]),
            seconds=int(match_t[3]),
            milliseconds=int(match_t[4] or 0),
        )
    return day
