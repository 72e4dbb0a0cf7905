"""The model directory: whether a training run may write there, resume there, or replace it.

The rules are `schemas.output_dirs`' (shared with the Beam stages), over `tf.io.gfile`:

- absent or empty: a new run;
- this trainer's finished run (`_STAGE.json` says train, `_SUCCESS` present): replaced only
  with `--overwrite`;
- this trainer's unfinished run (no `_SUCCESS`, e.g. a killed one): resumed, provided it was
  started with the same settings (config.json, written when a run starts); `--overwrite` starts
  it over instead;
- anything else (another stage's output, a folder of other files, the data directory or a
  directory inside or around it): refused, with nothing written or deleted.

`check_model_dir` decides without writing anything; `prepare_model_dir` then acts on it.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

from model.filesystem import GfileFilesystem, join, read_text, write_text
from schemas import features, output_dirs
from schemas.config import JobConfig
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


def check_model_dir(job: JobConfig) -> str:
    """NEW, REPLACE or RESUME for `job.train.model_dir`; raises UserError when the run may not write there."""
    settings = job.train
    if not settings.model_dir:
        raise UserError("No model directory given: pass --model-dir DIR.")
    output_dirs.check_not_overlapping(settings.model_dir, [settings.data_dir, settings.init_from or ""],
                                      [settings.word_vectors] if settings.word_vectors else [])
    try:
        if tf.io.gfile.exists(settings.model_dir) and not tf.io.gfile.isdir(settings.model_dir):
            raise UserError(f"Model directory {settings.model_dir} is a file; choose a directory.")
        decision = output_dirs.check_output_dir(GfileFilesystem(), settings.model_dir, output_dirs.TRAIN,
                                                settings.overwrite, resumable=True)
        if decision == RESUME:
            check_same_settings(settings.model_dir, job)
        return decision
    except (tf.errors.OpError, OSError) as e:
        raise UserError(f"Cannot read the model directory {settings.model_dir}: {_first_line(e)}") from None


def prepare_model_dir(job: JobConfig, decision: str) -> None:
    """Creates (or replaces) the model directory for `decision`, marked as the trainer's own."""
    model_dir = job.train.model_dir
    try:
        if decision == REPLACE:
            tf.io.gfile.rmtree(model_dir)  # check_model_dir made sure it is this trainer's own output
        if decision == RESUME:
            logging.info("Found the state of an unfinished run in %s: resuming it.", model_dir)
            return
        tf.io.gfile.makedirs(model_dir)
        write_text(join(model_dir, output_dirs.STAGE_MARKER), output_dirs.stage_marker(output_dirs.TRAIN))
        write_text(join(model_dir, RUN_CONFIG_FILE), job.to_json())
    except (tf.errors.OpError, OSError) as e:
        raise UserError(f"Cannot write the model directory {model_dir}: {_first_line(e)}") from None


def check_same_settings(model_dir: str, job: JobConfig) -> None:
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
    changes = changed_settings(state_settings(started_with, job.train.encoder), state_settings(now, job.train.encoder))
    if changes:
        named = "; ".join(f"{key} was {was!r}, now {now!r}" for key, was, now in changes[:_MAX_CHANGES_NAMED])
        more = f" (and {len(changes) - _MAX_CHANGES_NAMED} more)" if len(changes) > _MAX_CHANGES_NAMED else ""
        raise UserError(f"The unfinished run in {model_dir} was started with other settings: {named}{more}. "
                        f"Rerun with its settings to resume it, or pass --overwrite to start over.")


def state_settings(job: dict, encoder: str) -> dict[str, object]:
    """{"section.key": value} of a job config dict (JobConfig.to_json's), for the settings that
    shape the saved state of an `encoder` run; paths made absolute so `prep/` and `./prep` compare
    equal. (A changed encoder shows as train.encoder, the encoder's own section being the same.)"""
    sections = ("train", "head", encoder)
    flat = {f"{section}.{key}": value for section in sections for key, value in job.get(section, {}).items()}
    for key in _PATH_SETTINGS:
        if flat.get(key):
            flat[key] = _comparable_path(flat[key])
    return {key: value for key, value in flat.items() if key not in RESUMABLE_CHANGES}


def changed_settings(was: dict, now: dict) -> list[tuple[str, object, object]]:
    """(key, value then, value now) for each key whose value differs, in key order."""
    return [(key, was.get(key), now.get(key)) for key in sorted(set(was) | set(now)) if was.get(key) != now.get(key)]


def _first_line(error: Exception) -> str:
    return (getattr(error, "message", None) or str(error) or type(error).__name__).splitlines()[0][:200]


def _comparable_path(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.abspath(path)
