"""Error hierarchy of emg-pipeline.

Every error the project raises on purpose derives from :class:`EmgPipelineError`
and carries the offending value as an attribute, so that callers (and the CLI,
which prints ``str(error)`` on one line) can say what was expected and what was
got. Bad arguments to a function raise :class:`ConfigError`, which is also a
:class:`ValueError`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BluetoothUnavailableError",
    "CharacteristicNotFoundError",
    "ClusterError",
    "ConfigError",
    "ConnectionLostError",
    "DecodeError",
    "DeviceNotFoundError",
    "EmgPipelineError",
    "EpisodeFileError",
    "LslLibraryError",
    "MissingDependencyError",
    "OutputError",
    "ProfileError",
    "RecordingError",
    "RecordingWarning",
    "SampleRateError",
    "SiteError",
    "StreamNotFoundError",
    "UsageError",
    "WebServerError",
]


class EmgPipelineError(Exception):
    """Base class of every error raised on purpose by emg-pipeline."""


class ConfigError(EmgPipelineError, ValueError):
    """A setting has an invalid value.

    Parameters
    ----------
    name : str
        Name of the setting.
    value : object
        The value that was given.
    expected : str
        What would have been accepted.
    """

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(f"invalid {name}={value!r}: expected {expected}")


class SampleRateError(EmgPipelineError, ValueError):
    """The sampling rate is missing, invalid or inconsistent with the data."""

    def __init__(self, message: str, fs: float | None = None) -> None:
        self.fs = fs
        super().__init__(message)


class RecordingError(EmgPipelineError):
    """A recording cannot be read: missing, empty, malformed or of unknown format.

    Parameters
    ----------
    path : str or Path or None
        The file concerned.
    reason : str
        What is wrong, in one line.
    """

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{reason}")


class RecordingWarning(UserWarning):
    """A recording was read, but not all of it: what was lost is said in one line.

    Given (with :func:`warnings.warn`) when a reader salvages a damaged file,
    e.g. a truncated EDF/BDF or WFDB record read up to its last whole record;
    with ``strict=True`` the reader raises :class:`RecordingError` instead.

    Parameters
    ----------
    path : str or Path or None
        The file concerned.
    reason : str
        What was lost, in one line.
    """

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{reason}")


class ProfileError(EmgPipelineError):
    """A firmware profile is missing or does not validate."""

    def __init__(self, profile: str, reason: str) -> None:
        self.profile = profile
        self.reason = reason
        super().__init__(f"firmware profile {profile!r}: {reason}")


class DecodeError(EmgPipelineError):
    """A packet from a board cannot be decoded.

    Parameters
    ----------
    reason : str
        What is wrong with the packet.
    packet : bytes
        The offending bytes (copied).
    """

    def __init__(self, reason: str, packet: bytes = b"") -> None:
        self.reason = reason
        self.packet = bytes(packet)
        super().__init__(f"cannot decode packet ({len(self.packet)} bytes): {reason}")


class DeviceNotFoundError(EmgPipelineError):
    """No board matching the request was seen while scanning.

    Parameters
    ----------
    identifier : str
        What was looked for: an address, or a profile name when scanning for
        any board of that kind.
    timeout_s : float
        How long the scan lasted.
    """

    def __init__(self, identifier: str, timeout_s: float) -> None:
        self.identifier = identifier
        self.timeout_s = timeout_s
        super().__init__(f"no board matching {identifier!r} found within {timeout_s:g} s "
                         "(is it powered, advertising and in range?)")


class CharacteristicNotFoundError(EmgPipelineError):
    """A characteristic named by the firmware profile is missing on the board.

    Parameters
    ----------
    uuid : str
        The characteristic looked for.
    profile : str
        The profile that names it.
    """

    def __init__(self, uuid: str, profile: str) -> None:
        self.uuid = uuid
        self.profile = profile
        super().__init__(f"the board has no characteristic {uuid} required by firmware "
                         f"profile {profile!r} (wrong profile or firmware?)")


class ConnectionLostError(EmgPipelineError):
    """The link to a board dropped and could not be re-established.

    Parameters
    ----------
    address : str
        The board's address.
    reason : str
        What happened last, in one line.
    attempts : int
        Connection attempts made before giving up.
    """

    def __init__(self, address: str, reason: str, attempts: int = 0) -> None:
        self.address = address
        self.reason = reason
        self.attempts = attempts
        tried = f" after {attempts} attempt(s)" if attempts else ""
        super().__init__(f"connection to {address} lost{tried}: {reason}")


class BluetoothUnavailableError(EmgPipelineError):
    """The computer's Bluetooth cannot be used (no adapter, adapter off, no BLE stack).

    Parameters
    ----------
    reason : str
        What the Bluetooth stack said.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Bluetooth is not available: {reason} (use --emulator HOST:PORT to "
                         "work with an emulated board)")


class OutputError(EmgPipelineError, OSError):
    """An output cannot be written: says which option, which path, and why.

    Parameters
    ----------
    option : str
        The command-line option (or parameter) that named the output, e.g. ``--out``.
    path : str or Path
        The output.
    reason : str
        Why, in a few words (``permission denied``, ``is a directory``...).
    """

    def __init__(self, option: str, path: str | Path, reason: str) -> None:
        self.option = option
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{option}: {path}: {reason}")

    @classmethod
    def from_os(cls, option: str, path: str | Path, exc: OSError) -> OutputError:
        """The error for an ``OSError`` met while writing ``path``."""
        reason = (exc.strerror or type(exc).__name__).lower()
        return cls(option, path, reason)


class SiteError(EmgPipelineError, ValueError):
    """A site option, session file or time setting is invalid.

    Parameters
    ----------
    value : object
        The offending value (option text, file path...).
    reason : str
        What is wrong, in one line.
    """

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(reason)


class EpisodeFileError(EmgPipelineError, ValueError):
    """An episode file is missing, malformed or holds an invalid value.

    Parameters
    ----------
    path : str or Path or None
        The file.
    reason : str
        What is wrong, in one line.
    row : int or None
        Data row (1 = first row after the header), if one row is at fault.
    column : str or None
        The column concerned.
    value : object
        The offending value.
    """

    def __init__(
        self,
        path: str | Path | None,
        reason: str,
        *,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason
        self.row = row
        self.column = column
        self.value = value
        where = "" if self.path is None else f"{self.path}: "
        at = "" if row is None else f"row {row}: "
        super().__init__(f"{where}{at}{reason}")


class UsageError(EmgPipelineError):
    """A command-line usage problem."""


class StreamNotFoundError(EmgPipelineError):
    """No Lab Streaming Layer stream matching a query was found in time.

    Parameters
    ----------
    query : str
        What was looked for (``name=EMG-1``, ``type=EMG``).
    timeout_s : float
        How long the search lasted.
    reason : str
        Why the streams found did not do (empty when none was found).
    """

    def __init__(self, query: str, timeout_s: float, reason: str = "") -> None:
        self.query = query
        self.timeout_s = timeout_s
        self.reason = reason
        text = reason or (f"none found within {timeout_s:g} s (is the outlet running and "
                          "reachable on this network? 'emg-pipeline scan --lsl' lists them)")
        super().__init__(f"LSL stream {query}: {text}")


class MissingDependencyError(EmgPipelineError, ImportError):
    """A feature needs packages of an optional extra that are not installed.

    Parameters
    ----------
    feature : str
        What needs them (e.g. ``"batch"``).
    extra : str
        The extra that installs them (``pip install 'emg-pipeline[EXTRA]'``).
    missing : str
        The module that could not be imported.
    """

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        self.feature = feature
        self.extra = extra
        self.missing = missing
        super().__init__(f"{feature} needs the package {missing!r}, which is not installed: "
                         f"pip install 'emg-pipeline[{extra}]'")


class ClusterError(EmgPipelineError):
    """The Dask cluster of a batch cannot be reached or started.

    Parameters
    ----------
    address : str
        The scheduler address, or ``"local"`` for the embedded cluster.
    reason : str
        What went wrong, in one line.
    """

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        where = "the embedded Dask cluster" if address == "local" else \
            f"the Dask scheduler at {address}"
        super().__init__(f"{where}: {reason}")


class ManifestError(EmgPipelineError, ValueError):
    """A batch manifest (CSV of recordings and their metadata) is malformed.

    Parameters
    ----------
    path : str or Path
        The manifest.
    reason : str
        What is wrong, in one line.
    row : int or None
        Data row (1 = first row after the header), if one row is at fault.
    column : str or None
        The column concerned.
    value : object
        The offending value.
    """

    def __init__(self, path: str | Path, reason: str, *, row: int | None = None,
                 column: str | None = None, value: object = None) -> None:
        self.path = Path(path)
        self.reason = reason
        self.row = row
        self.column = column
        self.value = value
        at = "" if row is None else f"row {row}: "
        super().__init__(f"{self.path}: {at}{reason}")


class LslLibraryError(MissingDependencyError):
    """pylsl is installed but no liblsl library can be loaded (neither its own nor mne-lsl's).

    Parameters
    ----------
    reason : str
        What was tried and what to do, in one line.
    """

    def __init__(self, reason: str) -> None:
        self.feature = "LSL"
        self.extra = "lab"
        self.missing = "liblsl"
        self.reason = reason
        EmgPipelineError.__init__(self, f"LSL needs the liblsl library: {reason}")


class WebServerError(EmgPipelineError):
    """The web dashboard cannot be served where it was asked to be.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` asked for (``--web``).
    reason : str
        What went wrong, in one line (e.g. the port is taken).
    """

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"--web {address}: {reason}")
