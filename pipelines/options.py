"""Beam pipeline options and the runner used when none is named.

Without `--runner` (or with `--runner DirectRunner`) the job runs on Beam's FnApiRunner: the local
engine behind DirectRunner, taken directly because Beam's DirectRunner first tries to download
the Prism runner, which fails or stalls on machines without internet access. The FnApiRunner
honours `--direct_running_mode` (in_memory, multi_threading, multi_processing) and
`--direct_num_workers`. Any other runner name is used as given, with its own flags: PortableRunner
(`--job_endpoint`, `--environment_type`, `--environment_config`), FlinkRunner, SparkRunner,
DataflowRunner. docs/runners.md has the commands, and the worker environment each needs.
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, SetupOptions, StandardOptions

from schemas.errors import UserError

_LOCAL_RUNNER_NAMES = (None, "DirectRunner", "direct", "FnApiRunner")


def make_pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Parses Beam's own flags; an unknown flag is an error rather than Beam's silent discard."""
    for previous, arg in zip([None, *beam_args], beam_args):
        takes_value = previous is not None and previous.startswith("--") and "=" not in previous
        if not arg.startswith("-") and not takes_value:
            raise UserError(f"Unexpected argument {arg!r}.")
    options = PipelineOptions(beam_args)
    known = set(options.get_all_options(retain_unknown_options=False))
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - known)
    if unknown:
        raise UserError(f"Unknown option --{unknown[0]}. See --help for this stage's options; "
                        f"Beam's own options are listed by `python -m apache_beam.options.pipeline_options`.")
    # Workers re-import our modules; the main session need not be pickled.
    options.view_as(SetupOptions).save_main_session = False
    return options


def make_pipeline(options: PipelineOptions) -> beam.Pipeline:
    runner_name = options.view_as(StandardOptions).runner
    if runner_name in _LOCAL_RUNNER_NAMES:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        logging.info("Running locally on Beam's FnApiRunner (no network needed).")
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    portable = options.view_as(PortableOptions)
    if portable.job_endpoint:
        # Beam's default environment is DOCKER: say where the SDK workers will come from.
        environment = portable.environment_config or " ".join(portable.environment_options or [])
        logging.info("Running on %s (job endpoint %s; SDK workers: %s %s).", runner_name, portable.job_endpoint,
                     portable.environment_type or "DOCKER", environment or "(Beam's default)")
    else:
        logging.info("Running on %s.", runner_name)
    return beam.Pipeline(options=options)
