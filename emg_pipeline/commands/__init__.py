"""Subcommands of ``emg-pipeline`` beyond ``detect``, one module each.

Every module listed in :data:`emg_pipeline.cli.COMMAND_MODULES` defines
``register(subparsers, add_pipeline_options)``: it adds its parser(s) to
``subparsers`` and sets ``func`` (``args -> exit status``) as their default.
``add_pipeline_options(parser)`` adds the shared detection settings, read back
with :func:`emg_pipeline.commands._common.settings_from_args`. Errors are raised as
:class:`~emg_pipeline.errors.EmgPipelineError` (or
:class:`~emg_pipeline.errors.UsageError`); :func:`emg_pipeline.cli.main` prints them
on one line. Nothing here imports :mod:`emg_pipeline.cli`.

Option value types (positive numbers, seconds, probabilities, ports...) are in
:mod:`emg_pipeline.commands._types`; options several commands share (``--fs``,
``--format``, ``--chunk-ms``, the detection settings, ``--out`` with the site
options), the bundled demo recording and the one writer of episode files are in
:mod:`emg_pipeline.commands._common`.
"""
