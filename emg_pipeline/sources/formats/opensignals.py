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
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from emg_pipeline.errors import RecordingError

from ._base import RecordingInfo, RecordingReader, read_head, resolve_fs, text_of
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


@dataclass(frozen=True)
class _Device:
    """The part of an OpenSignals header that the reader needs, for one device."""

    name: str
    attrs: Mapping[str, Any]
    channels: tuple[int, ...]
    labels: tuple[str, ...]
    sensors: tuple[str, ...]
    bits: tuple[int, ...]


def _device(
    name: str, attrs: Mapping[str, Any], sensors: Sequence[str], labels: Sequence[str]
) -> _Device:
    channels = tuple(int(c) for c in np.atleast_1d(attrs.get("channels", [])))
    resolution = [int(r) for r in np.atleast_1d(attrs.get("resolution", []))]
    # BITalino lists one resolution per column (nSeq, I1, I2, O1, O2, A1..), PLUX one per
    # channel: in both the analog channels are the last entries
    bits = tuple(resolution[-len(channels) :]) if len(resolution) >= len(channels) else ()
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
        rate = resolve_fs(
            path, None if stated is None else float(stated), fs, "the OpenSignals header"
        )
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
        if not isinstance(header, dict) or not header:
            raise RecordingError(path, "OpenSignals JSON header holds no device")
        devices: list[tuple[_Device, int]] = []
        offset = 0
        for name, attrs in header.items():
            if not isinstance(attrs, dict):
                raise RecordingError(path, f"OpenSignals header entry {name!r} is not an object")
            columns = list(attrs.get("column", []))
            dev = _device(name, attrs, attrs.get("sensor", []), attrs.get("label", []))
            n_analog = len(dev.channels)
            if n_analog == 0 or len(columns) < n_analog:
                raise RecordingError(path, f"device {name!r}: no analog channel in the header")
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
        try:
            self._h5 = h5py.File(path, "r")
        except OSError as error:
            raise RecordingError(
                path, f"cannot open HDF5 file: {str(error).splitlines()[0]}"
            ) from None
        devices: list[tuple[_Device, int]] = []
        for name, group in self._h5.items():
            if (
                not isinstance(group, h5py.Group)
                or "raw" not in group
                or "sampling rate" not in group.attrs
            ):
                continue
            attrs = dict(group.attrs)
            channels = [int(c) for c in np.atleast_1d(attrs.get("channels", []))]
            raw = group["raw"]
            sensors, labels = [], []
            for c in channels:
                key = f"channel_{c}"
                if key not in raw:
                    self.close()
                    raise RecordingError(path, f"OpenSignals HDF5: {name}/raw/{key} missing")
                sensors.append(_text(raw[key].attrs.get("sensor", "")))
                labels.append(_text(raw[key].attrs.get("label", "")) or f"A{c}")
            devices.append((_device(name, attrs, sensors, labels), 0))
        if not devices:
            self.close()
            raise RecordingError(path, "HDF5 file without an OpenSignals device group (<MAC>/raw)")
        device, _ = _pick(devices)
        self._selected = _select(device)
        raw = self._h5[device.name]["raw"]
        self._datasets = tuple(raw[f"channel_{device.channels[k]}"] for k in self._selected)
        lengths = {d.shape[0] for d in self._datasets}
        if len(lengths) != 1:
            self.close()
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
            block = np.column_stack(
                [np.asarray(d[start:stop]).reshape(stop - start, -1)[:, 0] for d in self._datasets]
            ).astype(np.float64)
            yield self._convert(block)

    def close(self) -> None:
        """Close the HDF5 file, if one is open."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
            self._datasets = ()


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
    emg = tuple(k for k, s in enumerate(device.sensors) if s.upper().startswith("EMG"))
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
