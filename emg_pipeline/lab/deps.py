"""The optional packages of the lab interop, imported only where they are used.

pylsl, pyxdf, MNE and mne-bids come with the ``lab`` extra
(``pip install 'emg-pipeline[lab]'``); nothing else in the project needs them.
Each ``import_*`` function returns the module or raises one
:class:`~emg_pipeline.errors.MissingDependencyError` that says what to install
(:class:`~emg_pipeline.errors.LslLibraryError` for a pylsl without its library).

liblsl
------
pylsl's Linux wheels bundle liblsl for glibc 2.35 and later; on older systems
pip installs a wheel without the library and ``import pylsl`` fails. Then the
liblsl shipped inside the ``mne-lsl`` wheel (built for older systems) is used
when that package is installed: :func:`import_pylsl` points ``PYLSL_LIB`` at it
and imports pylsl again. When neither is there, the error says so in one line.

liblsl logs to standard error (its configuration at start, and "Stream
transmission broke off ... re-connecting" each time an outlet goes away,
which is expected: the inlet source reconnects). :func:`import_pylsl` keeps it
to fatal errors unless a liblsl configuration is in place (``LSLAPICFG``, or
an ``lsl_api.cfg`` where liblsl looks for one); set ``LSLAPICFG`` to your own
configuration file to see its log.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from emg_pipeline.errors import LslLibraryError, MissingDependencyError

__all__ = ["LAB_EXTRA", "import_mne", "import_mne_bids", "import_pylsl", "import_pyxdf"]

#: the extra that installs every optional package of the lab interop
LAB_EXTRA = "lab"

#: liblsl configuration that keeps its log to fatal errors
_QUIET_CONFIG = "[log]\nlevel = -3\n"

_NO_LIBLSL = (
    "the installed pylsl wheel has none for this system (glibc older than 2.35): "
    "pip install mne-lsl, whose wheel bundles one (then used automatically), or set "
    "PYLSL_LIB to a liblsl library file"
)


def _require(module: str, feature: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(feature, LAB_EXTRA, module) from None


def _forget(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


def _mne_lsl_library() -> Path | None:
    """The liblsl inside an installed mne-lsl wheel (found without importing mne-lsl)."""
    try:
        spec = importlib.util.find_spec("mne_lsl")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "lsl" / "lib"
    found = sorted(folder.glob("liblsl*.so*")) + sorted(folder.glob("liblsl*.dylib")) \
        + sorted(folder.glob("lsl*.dll"))
    return found[0] if found else None


def _user_config() -> bool:
    """Whether liblsl will read a configuration of the user's (network settings...)."""
    if os.environ.get("LSLAPICFG"):
        return True
    places = (Path("lsl_api.cfg"), Path.home() / "lsl_api" / "lsl_api.cfg",
              Path("/etc/lsl_api/lsl_api.cfg"))
    return any(p.is_file() for p in places)


@functools.cache
def import_pylsl() -> ModuleType:
    """Import pylsl with a working liblsl, its log kept quiet.

    Returns
    -------
    module
        ``pylsl``.

    Raises
    ------
    MissingDependencyError
        pylsl is not installed.
    LslLibraryError
        No liblsl library can be loaded (neither pylsl's own nor mne-lsl's).
    """
    try:
        import pylsl
    except ImportError:
        raise MissingDependencyError("LSL", LAB_EXTRA, "pylsl") from None
    except (RuntimeError, OSError):
        library = _mne_lsl_library()
        if library is None:
            raise LslLibraryError(_NO_LIBLSL) from None
        _forget("pylsl")
        os.environ["PYLSL_LIB"] = str(library)
        try:
            import pylsl
        except (ImportError, RuntimeError, OSError) as exc:
            raise LslLibraryError(
                f"mne-lsl's copy ({library.name}) could not be loaded either "
                f"({' '.join(str(exc).split())[:120]})") from None
    if not _user_config() and hasattr(pylsl, "set_config_content"):
        # before any other liblsl call: later it would be ignored
        pylsl.set_config_content(_QUIET_CONFIG)
    return pylsl


def import_pyxdf() -> ModuleType:
    """Import pyxdf, or raise :class:`MissingDependencyError`."""
    return _require("pyxdf", "reading XDF files")


def import_mne() -> ModuleType:
    """Import MNE-Python, or raise :class:`MissingDependencyError`."""
    return _require("mne", "MNE export")


def import_mne_bids() -> ModuleType:
    """Import mne-bids, or raise :class:`MissingDependencyError`."""
    return _require("mne_bids", "BIDS export")
