"""Command-line plumbing shared by every stage: flags → config overrides, one-line errors.

Beam-free, so the trainer (which never imports Beam) uses it as the pipelines do.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from schemas.config import JobConfig
from schemas.config_loader import load_job_config
from schemas.errors import UserError
from schemas.logs import configure_logging


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as a UserError (one line, no usage dump)."""

    def __init__(self, job_file: bool = True, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)  # never swallow a Beam flag by its prefix
        if job_file:  # the stages read a job file; one-off tools (checkpoint import) do not
            self.add_argument("--config", default=None, metavar="JOB_YAML",
                              help="YAML job file; flags given here override its values.")

    def error(self, message):
        raise UserError(f"{message} (see --help)")


def add_override(parser: argparse.ArgumentParser, flag: str, config_key: str, **kwargs) -> None:
    """A flag whose value, when given, overrides `config_key` ("section.field") of the job file."""
    parser.add_argument(flag, dest=config_key, default=argparse.SUPPRESS, **kwargs)


def resolve_job(parsed: argparse.Namespace) -> JobConfig:
    """The JobConfig from the parsed --config file and the override flags that were given."""
    overrides = {key: value for key, value in vars(parsed).items() if "." in key}
    return load_job_config(parsed.config, overrides)


def run_main(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> None:
    """Runs an entry point; a UserError ends it with one line on stderr and exit status 2."""
    configure_logging()
    try:
        main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
