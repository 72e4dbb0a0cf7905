"""Which stage made a directory, and whether a stage may write (or replace) it.

Every stage writes `_STAGE.json` (the stage's name and the project version) into its output
directory as soon as it creates it, and `_SUCCESS` last, when the output is whole. With those two
files a stage can tell its own finished output (which `--overwrite` may replace) from anything
else: another stage's output, a folder of someone else's files, or a directory the job reads.
Only its own output is ever deleted; everything else is refused with a message that does not
suggest `--overwrite`.

The rules are pure functions over a small filesystem interface, so the Beam stages (Beam's
`FileSystems`) and the trainer (`tf.io.gfile`) share them without importing each other.
"""

from __future__ import annotations

import json
import posixpath
from typing import Iterable, Protocol

from schemas.errors import UserError
from schemas.features import SUCCESS_MARKER

PROJECT_VERSION = "0.2.0"  # setup.py reads it from here
STAGE_MARKER = "_STAGE.json"

PREPROCESS = "preprocess"
TRAIN = "train"
SCORE = "score"
PRETRAIN = "pretrain"
IMPORT = "import_checkpoint"
STAGES = (PREPROCESS, TRAIN, SCORE, PRETRAIN, IMPORT)

_GLOB_CHARACTERS = "*?["


class Filesystem(Protocol):
    """What the checks need to look at a directory, on any filesystem."""

    def exists(self, path: str) -> bool: ...

    def list_names(self, path: str) -> list[str]: ...  # entry names directly under a directory

    def read_text(self, path: str) -> str: ...


def stage_marker(stage: str) -> str:
    """The content of `_STAGE.json` for a directory made by `stage`."""
    if stage not in STAGES:
        raise ValueError(f"Unknown stage. Received: stage={stage!r}")
    return json.dumps({"stage": stage, "version": PROJECT_VERSION}) + "\n"


def stage_of(fs: Filesystem, directory: str) -> str | None:
    """The stage named by `directory`'s `_STAGE.json`, or None when it has none (or an unreadable one)."""
    path = _join(directory, STAGE_MARKER)
    if not fs.exists(path):
        return None
    try:
        stage = json.loads(fs.read_text(path)).get("stage")
    except (ValueError, AttributeError):
        return None
    return stage if stage in STAGES else None


def is_finished(fs: Filesystem, directory: str) -> bool:
    return fs.exists(_join(directory, SUCCESS_MARKER))


def _join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def _normalized(path: str) -> str:
    """A comparable form of a path: scheme kept, `..`, `.` and trailing slashes resolved."""
    scheme, sep, rest = path.partition("://")
    if not sep:
        return posixpath.abspath(path)
    return f"{scheme}://{posixpath.normpath('/' + rest).lstrip('/')}"


def _is_within(path: str, directory: str) -> bool:
    """True when `path` is `directory` or lies under it."""
    path, directory = _normalized(path), _normalized(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def input_root(pattern: str) -> str:
    """The directory a file pattern reads under: its longest prefix without glob characters."""
    cut = min((i for i, c in enumerate(pattern) if c in _GLOB_CHARACTERS), default=None)
    if cut is None:
        return pattern
    return pattern[:cut].rsplit("/", 1)[0] or "/"


def check_not_overlapping(output_dir: str, input_dirs: Iterable[str], input_patterns: Iterable[str] = ()) -> None:
    """Refuses an output directory that is (inside) an input directory, or that holds an input.

    `input_dirs` are directories the stage reads as a whole (a preprocessing output, a model, a
    text-dirs corpus): the output may not be them or lie inside them. `input_patterns` are file
    patterns: the output may not be the directory they read from, nor contain it (replacing the
    output would delete the inputs).
    """
    for directory in input_dirs:
        if directory and (_is_within(output_dir, directory) or _is_within(directory, output_dir)):
            raise UserError(f"Output directory {output_dir} overlaps the input {directory}: "
                            f"choose an output directory outside the inputs.")
    for pattern in input_patterns:
        root = input_root(pattern)
        if _is_within(root, output_dir) or (_is_within(output_dir, root) and "**" in pattern):
            raise UserError(f"Output directory {output_dir} overlaps the input {pattern!r}: "
                            f"choose an output directory outside the inputs.")


def check_output_dir(fs: Filesystem, output_dir: str, stage: str, overwrite: bool,
                     resumable: bool = False) -> str:
    """Decides what `stage` may do with `output_dir`; raises UserError when it may not write there.

    Returns "new" (absent or empty: write it), "replace" (this stage's finished output and
    `--overwrite`), or "resume" (this stage's unfinished output and `resumable`, e.g. the
    trainer's killed run; with `--overwrite` an unfinished output is replaced instead).
    """
    if not fs.exists(output_dir) or not fs.list_names(output_dir):
        return "new"
    owner = stage_of(fs, output_dir)
    if owner is None:
        what = ("a finished output of an older version or another tool" if is_finished(fs, output_dir)
                else "not empty and was not written by this project")
        raise UserError(f"Output directory {output_dir} is {what}; nothing was changed. "
                        f"Choose another directory or empty it yourself.")
    if owner != stage:
        raise UserError(f"Output directory {output_dir} holds the output of the {owner} stage, not of {stage}; "
                        f"nothing was changed. Choose another directory.")
    if is_finished(fs, output_dir):
        if not overwrite:
            raise UserError(f"Output directory {output_dir} already holds a finished {stage} run; "
                            f"pass --overwrite to replace it.")
        return "replace"
    if overwrite:
        return "replace"
    if resumable:
        return "resume"
    raise UserError(f"Output directory {output_dir} holds an unfinished {stage} run; "
                    f"pass --overwrite to replace it.")
