"""Argument parsing of the Beam stages: job flags resolved into the JobConfig, the rest to Beam."""

from __future__ import annotations

from typing import Sequence

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.options import make_pipeline_options
from schemas.cli import ArgumentParser, add_override, resolve_job, run_main  # noqa: F401  (re-exported)
from schemas.config import JobConfig


def parse_job_args(parser: ArgumentParser, argv: Sequence[str] | None) -> tuple[JobConfig, PipelineOptions]:
    """Splits job flags from Beam flags and resolves the JobConfig (file, then flags)."""
    known, beam_args = parser.parse_known_args(argv)
    return resolve_job(known), make_pipeline_options(beam_args)
