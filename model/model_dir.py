"""The run directory: whether a training (or pretraining) run may write there, resume there, or replace it.

The rules are `schemas.output_dirs`' (shared with the Beam stages), over `tf.io.gfile`:

- absent or empty: a new run;
- this trainer's finished run (`_STAGE.json` says train, `_SUCCESS` present): replaced only
  with `--overwrite`;
- this trainer's unfinished run (no `_SUCCESS`, e.g. a killed one): resumed, provided it was
  started with the same settings (config.json, written when a run starts); `--overwrite` starts
  it over instead;
- anything else (another stage's output, a folder of other files, the data directory or a
  directory inside or around it): refused, with nothing written or deleted.

`check_model_dir` decides without writing anything; `prepare_model_dir` then acts on it. The
pretraining stage's output directory (`model.pretrain`) follows the same rules through
`check_run_dir` and `prepare_run_dir`, with its own stage and settings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Callable

import tensorflow as tf

from model.filesystem import GfileFilesystem, join, read_text, write_text
from schemas import features, output_dirs
from schemas.config import AUTO, JobConfig
from schemas.errors import UserError

RUN_CONFIG_FILE = features.CONFIG_FILE  # the resolved job config, written when a run starts
NEW, REPLACE, RESUME = "new", "replace", "resume"  # check_output_dir's decisions

# Settings a resumed run may change: where files go and how the hardware runs the steps. Every
# other setting of `train`, of `head` and of the chosen encoder's section shapes the saved state
# (weights, optimizer, learning-rate schedule, epoch count), so resuming under another value would
# mix two runs. The other sections (corpus, preprocess, score, the other encoder) do not touch it.
RESUMABLE_CHANGES = frozenset({"train.model_dir", "train.overwrite", "train.keep_checkpoints", "train.strategy",
                               "train.tpu", "train.mixed_precision", "train.jit_compile"})
_PATH_SETTINGS = ("train.data_dir", "train.word_vectors", "train.init_from")
_MAX_CHANGES_NAMED = 4


@dataclasses.dataclass(frozen=True)
class RunDir:
    """What the rules need to know about one stage's run directory."""

    path: str
    stage: str  # output_dirs.TRAIN, output_dirs.PRETRAIN
    overwrite: bool
    input_dirs: tuple[str, ...]  # directories the run reads, which the run directory may not overlap
    input_files: tuple[str, ...] = ()
    flag: str = "--model-dir"  # the flag that names it, in messages
    noun: str = "model directory"  # what messages call it
    # (section.key settings that shape the saved state, from a job config dict) for the resume check
    state_settings: Callable[[dict], dict] | None = None


def model_run_dir(job: JobConfig) -> RunDir:
    settings = job.train
    return RunDir(settings.model_dir, output_dirs.TRAIN, settings.overwrite,
                  (settings.data_dir, settings.init_from or ""),
                  (settings.word_vectors,) if settings.word_vectors else (),
                  state_settings=lambda config: state_settings(config, settings.encoder))


def check_model_dir(job: JobConfig) -> str:
    """NEW, REPLACE or RESUME for `job.train.model_dir`; raises UserError when the run may not write there."""
    return check_run_dir(job, model_run_dir(job))


def prepare_model_dir(job: JobConfig, decision: str) -> None:
    """Creates (or replaces) the model directory for `decision`, marked as the trainer's own."""
    prepare_run_dir(job, model_run_dir(job), decision)


def check_run_dir(job: JobConfig, run_dir: RunDir) -> str:
    """NEW, REPLACE or RESUME for `run_dir`; raises UserError when the run may not write there."""
    if not run_dir.path:
        raise UserError(f"No {run_dir.noun} given: pass {run_dir.flag} DIR.")
    output_dirs.check_not_overlapping(run_dir.path, run_dir.input_dirs, run_dir.input_files)
    try:
        if tf.io.gfile.exists(run_dir.path) and not tf.io.gfile.isdir(run_dir.path):
            raise UserError(f"{run_dir.noun.capitalize()} {run_dir.path} is a file; choose a directory.")
        decision = output_dirs.check_output_dir(GfileFilesystem(), run_dir.path, run_dir.stage,
                                                run_dir.overwrite, resumable=True)
        if decision == RESUME:
            check_same_settings(run_dir.path, job, run_dir.state_settings)
        return decision
    except (tf.errors.OpError, OSError) as e:
        raise UserError(f"Cannot read the {run_dir.noun} {run_dir.path}: {_first_line(e)}") from None


def prepare_run_dir(job: JobConfig, run_dir: RunDir, decision: str) -> None:
    """Creates (or replaces) `run_dir` for `decision`: _STAGE.json (its stage) and config.json first."""
    path = run_dir.path
    try:
        if decision == REPLACE:
            tf.io.gfile.rmtree(path)  # check_run_dir made sure it is this stage's own output
        if decision == RESUME:
            logging.info("Found the state of an unfinished run in %s: resuming it.", path)
            return
        tf.io.gfile.makedirs(path)
        write_text(join(path, output_dirs.STAGE_MARKER), output_dirs.stage_marker(run_dir.stage))
        write_text(join(path, RUN_CONFIG_FILE), job.to_json())
    except (tf.errors.OpError, OSError) as e:
        raise UserError(f"Cannot write the {run_dir.noun} {path}: {_first_line(e)}") from None


def check_same_settings(model_dir: str, job: JobConfig, settings_of: Callable[[dict], dict] | None = None) -> None:
    """Refuses to resume the unfinished run in `model_dir` when a setting of its state changed."""
    path = join(model_dir, RUN_CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return  # killed before it saved its settings: before any epoch, so nothing to mix up
    try:
        started_with = json.loads(read_text(path))
    except ValueError:
        raise UserError(f"{path} is not valid JSON, so the unfinished run in {model_dir} cannot be checked "
                        f"before resuming it; pass --overwrite to start over.") from None
    now = json.loads(job.to_json())
    settings_of = settings_of or (lambda config: state_settings(config, job.train.encoder))
    changes = changed_settings(settings_of(started_with), settings_of(now))
    if changes:
        named = "; ".join(f"{key} was {was!r}, now {now!r}" for key, was, now in changes[:_MAX_CHANGES_NAMED])
        more = f" (and {len(changes) - _MAX_CHANGES_NAMED} more)" if len(changes) > _MAX_CHANGES_NAMED else ""
        raise UserError(f"The unfinished run in {model_dir} was started with other settings: {named}{more}. "
                        f"Rerun with its settings to resume it, or pass --overwrite to start over.")


def state_settings(job: dict, encoder: str) -> dict[str, object]:
    """{"section.key": value} of a job config dict (JobConfig.to_json's), for the settings that
    shape the saved state of an `encoder` run; paths made absolute so `prep/` and `./prep` compare
    equal. (A changed encoder shows as train.encoder, the encoder's own section being the same.)
    An `auto` encoder is chosen from the data later: both encoders' sections count."""
    encoder_sections = ("bilstm", "albert") if encoder == AUTO else (encoder,)
    return comparable_settings(job, ("train", "head", "ngrams", *encoder_sections), RESUMABLE_CHANGES,
                               _PATH_SETTINGS)


def comparable_settings(job: dict, sections: tuple[str, ...], unchecked: frozenset[str],
                        paths: tuple[str, ...]) -> dict[str, object]:
    """{"section.key": value} of a job config dict for `sections`, less the `unchecked` keys, with
    the `paths` keys made absolute so `prep/` and `./prep` compare equal."""
    flat = {f"{section}.{key}": value for section in sections for key, value in job.get(section, {}).items()}
    for key in paths:
        if flat.get(key):
            flat[key] = _comparable_path(flat[key])
    return {key: value for key, value in flat.items() if key not in unchecked}


def changed_settings(was: dict, now: dict) -> list[tuple[str, object, object]]:
    """(key, value then, value now) for each key whose value differs, in key order."""
    return [(key, was.get(key), now.get(key)) for key in sorted(set(was) | set(now)) if was.get(key) != now.get(key)]


def _first_line(error: Exception) -> str:
    return (getattr(error, "message", None) or str(error) or type(error).__name__).splitlines()[0][:200]


def _comparable_path(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.abspath(path)
