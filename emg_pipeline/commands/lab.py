"""``emg-pipeline export-bids``: recordings and their episodes as a BIDS-EMG dataset.

Each recording is run through the same detection as ``detect`` (same
options), then written with mne-bids under ``--bids-root``: the signals as
BDF, the EMG sidecar with the electrode placement scheme, ``channels.tsv``
and ``events.tsv`` holding the episodes (``spasm/tonic/calf``...), the gaps
of missing samples (``BAD_gap``) and the recording's own annotations.
Several recordings become runs 1, 2... of the subject (and ``--bids-session``).
Needs the ``lab`` extra (``pip install 'emg-pipeline[lab]'``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from emg_pipeline.commands._common import (
    add_recording_options,
    add_site_options,
    add_stream_option,
    settings_from_args,
    sites_from_args,
)

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction,
             add_pipeline_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``export-bids`` subcommand."""
    from emg_pipeline.lab.bids import EMG_PLACEMENTS

    p = subparsers.add_parser(
        "export-bids", help="write recordings and their episodes as a BIDS-EMG dataset",
        description="Detect episodes in each recording (as 'detect' does) and write the "
                    "recordings with them as a BIDS-EMG dataset (mne-bids): sub-SUBJECT/"
                    "[ses-LABEL/]emg/ with the BDF signals, the EMG sidecar, channels.tsv "
                    "and events.tsv (the episodes, gaps of missing samples, the recording's "
                    "annotations). Several recordings become runs 1, 2... Needs "
                    "'pip install emg-pipeline[lab]'.")
    p.add_argument("recordings", nargs="+", metavar="RECORDING",
                   help="recording files (any supported format)")
    p.add_argument("--bids-root", required=True, metavar="DIR",
                   help="the BIDS dataset's folder (created; files of the same subject, "
                        "session, task and run are overwritten)")
    p.add_argument("--subject", required=True, metavar="LABEL",
                   help="subject label (letters and digits)")
    p.add_argument("--bids-session", default=None, metavar="LABEL",
                   help="BIDS session label (--session is the session settings file of the "
                        "sites)")
    p.add_argument("--task", default="monitoring", metavar="LABEL",
                   help="task label (default 'monitoring')")
    p.add_argument("--emg-placement", choices=EMG_PLACEMENTS, default="Other",
                   help="how the electrode positions were determined (BIDS "
                        "EMGPlacementScheme; default Other, described by each channel's site)")
    p.add_argument("--placement-description", default=None, metavar="TEXT",
                   help="EMGPlacementSchemeDescription (default for Other: the channels' sites)")
    add_recording_options(p, fs_help="sampling rate; supplies or checks the files' rate")
    add_stream_option(p)
    add_site_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no line per recording")
    add_pipeline_options(p)
    p.set_defaults(func=_cmd_export_bids, compiles=True)


def _cmd_export_bids(args: argparse.Namespace) -> int:
    from emg_pipeline.errors import RecordingError
    from emg_pipeline.lab.bids import export_bids
    from emg_pipeline.lab.deps import import_mne, import_mne_bids

    import_mne()        # a missing package is said before any work
    import_mne_bids()
    settings = settings_from_args(args)
    paths = [Path(p) for p in args.recordings]
    for path in paths:
        if not path.is_file():
            raise RecordingError(path, "file not found")
    sites: dict[str, str] = {}
    if args.site or args.session:
        # --site and the session file name channels; they apply to every recording
        from emg_pipeline.sources.formats import open_recording

        for path in paths:
            with open_recording(path, format=args.format, fs=args.fs, strict=args.strict,
                                stream=args.stream) as reader:
                sites.update(sites_from_args(args, reader.info.channels, reader.info).sites)
    done = export_bids(paths, args.bids_root, subject=args.subject, session=args.bids_session,
                       task=args.task, emg_placement=args.emg_placement,
                       placement_description=args.placement_description, settings=settings,
                       sites=sites or None, format=args.format, fs=args.fs, stream=args.stream)
    if not args.quiet:
        for item in done:
            run = f" (run {item.run})" if item.run is not None else ""
            print(f"{item.recording.name}{run}: {item.duration_s:.1f} s, {item.n_episodes} "
                  f"episodes -> {item.data_file}", file=sys.stderr)
        print(f"BIDS dataset written to {args.bids_root}", file=sys.stderr)
    return 0
