"""Lab interop: Lab Streaming Layer in and out, XDF files, MNE-Python and BIDS-EMG.

Everything here needs the ``lab`` extra (``pip install 'emg-pipeline[lab]'``:
pylsl, pyxdf, mne, mne-bids), imported only when used
(:mod:`~emg_pipeline.lab.deps`); a missing one gives one
:class:`~emg_pipeline.errors.MissingDependencyError` line saying what to
install.

- :func:`to_mne` — a recording and its episodes as an ``mne.io.RawArray``
  (emg channels in volts, episodes and gaps as annotations);
  :func:`write_fif` saves it (``detect --mne-fif``);
- :func:`export_bids` — recordings with their detected episodes as a BIDS-EMG
  dataset (``emg-pipeline export-bids``);
- :class:`~emg_pipeline.sinks.lsl.LslOutlet` — the conditioned EMG and the
  live events as two LSL streams (``replay --lsl``, ``stream --lsl``);
- :class:`~emg_pipeline.sources.lsl.LslSource` — an LSL stream as a live
  source (``stream lsl:NAME``), :func:`~emg_pipeline.sources.lsl.list_streams`
  (``scan --lsl``);
- :class:`~emg_pipeline.sources.formats.xdf.XdfReader` — XDF files for every
  command that reads a recording (``--stream NAME``).
"""

from .bids import EMG_PLACEMENTS, BidsExport, export_bids
from .mne_raw import GAP_DESCRIPTION, episode_description, to_mne, write_fif

__all__ = [
    "EMG_PLACEMENTS",
    "GAP_DESCRIPTION",
    "BidsExport",
    "episode_description",
    "export_bids",
    "to_mne",
    "write_fif",
]
