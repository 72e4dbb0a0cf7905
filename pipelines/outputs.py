"""Output directories that appear whole or not at all, on any Beam filesystem.

A stage writes into `<dir>.staging-<run id>` next to the final directory, starting with the
`_STAGE.json` that names the stage, and moves it into place only after the pipeline succeeded;
`_SUCCESS` is written last. What a stage may replace is decided by `schemas.output_dirs`: only a
finished output of the same stage, and only with `--overwrite`.

- A run that raises removes its staging directory; the final directory is not touched.
- A run that ran but failed in a way the user must see (every record rejected, empty input)
  keeps its staging directory as `<dir>.failed-<run id>` (no `_SUCCESS`), so its `rejected/` can
  be read, and leaves the final directory as it was: a corrected rerun can write there.
- A killed run leaves `<dir>.staging-<run id>`; the next run into the same `<dir>` deletes such
  directories once nothing in them has changed for `STALE_STAGING_SECONDS`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from typing import Sequence

from apache_beam.io.filesystems import FileSystems

from schemas import features, output_dirs
from schemas.errors import UserError

STALE_STAGING_SECONDS = 24 * 3600  # a staging directory untouched this long belongs to a killed run
_STAGING = ".staging-"
_FAILED = ".failed-"


def _is_local(path: str) -> bool:
    return "://" not in path


def _files_under(directory: str) -> list:
    """Metadata of every file below `directory` (recursively); empty when there is none."""
    return FileSystems.match([FileSystems.join(directory, "**")])[0].metadata_list


class BeamFilesystem:
    """`output_dirs.Filesystem` over Beam's FileSystems (object stores have no real directories)."""

    def exists(self, path: str) -> bool:
        if _is_local(path):
            return os.path.exists(path)
        return FileSystems.exists(path) or bool(_files_under(path))

    def list_names(self, path: str) -> list[str]:
        if _is_local(path):
            return os.listdir(path) if os.path.isdir(path) else []
        prefix = path.rstrip("/") + "/"
        return sorted({m.path[len(prefix):].split("/")[0] for m in _files_under(path)})

    def read_text(self, path: str) -> str:
        return read_text(path)


def _delete(path: str) -> None:
    if _is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif FileSystems.exists(path) or _files_under(path):
        FileSystems.delete([path])


def _move(source: str, destination: str) -> None:
    """Moves a directory; on object stores file by file, then removes what is left of `source`."""
    if _is_local(source):
        os.rename(source, destination)
        return
    sources = [m.path for m in _files_under(source)]
    FileSystems.rename(sources, [destination + s[len(source):] for s in sources])
    _delete(source)


def is_finished(path: str) -> bool:
    return FileSystems.exists(FileSystems.join(path, features.SUCCESS_MARKER))


def write_text(path: str, content: str) -> None:
    with FileSystems.create(path) as f:
        f.write(content.encode("utf-8"))


def read_text(path: str) -> str:
    with FileSystems.open(path) as f:
        return f.read().decode("utf-8")


def take_json(path: str) -> dict:
    """Reads a JSON file the pipeline wrote for the launcher, then deletes it."""
    value = json.loads(read_text(path))
    FileSystems.delete([path])
    return value


def check_reconciles(read: int, **parts: int) -> None:
    """Every record read must be accounted for; anything else is a bug, never a user error."""
    if read != sum(parts.values()):
        counts = " ".join(f"{name}={count}" for name, count in parts.items())
        raise RuntimeError(f"Counts do not reconcile: read={read} {counts}")


def _glob_escaped(path: str) -> str:
    return re.sub(r"([*?[])", r"[\1]", path)


def remove_stale_staging_dirs(final_dir: str, now: float | None = None,
                              max_age_seconds: float = STALE_STAGING_SECONDS) -> list[str]:
    """Deletes `<final_dir>.staging-<id>` directories of killed runs; returns those deleted.

    Only directories named after this `final_dir` that hold a stage marker (so this project made
    them), and in which no file changed for `max_age_seconds`, are deleted: a run still writing
    into its own staging directory keeps it.
    """
    now = time.time() if now is None else now
    own_name = re.compile(re.escape(final_dir + _STAGING) + r"[0-9a-f]{8}")
    pattern = f"{_glob_escaped(final_dir + _STAGING)}*/{output_dirs.STAGE_MARKER}"
    markers = FileSystems.match([pattern])[0].metadata_list
    deleted = []
    for staging in sorted({m.path[: -len(output_dirs.STAGE_MARKER) - 1] for m in markers}):
        if not own_name.fullmatch(staging) or output_dirs.stage_of(BeamFilesystem(), staging) is None:
            continue
        newest = max(m.last_updated_in_seconds for m in _files_under(staging))
        if now - newest >= max_age_seconds:
            _delete(staging)
            deleted.append(staging)
            logging.info("Deleted %s, left by a run that stopped more than a day ago.", staging)
    return deleted


def _reason(error: OSError, staging_dir: str, final_dir: str) -> str:
    """The cause of an OSError in words, naming the directory the user gave, not the staging one."""
    if isinstance(error.strerror, str):
        return error.strerror
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    return first_line.replace(staging_dir, final_dir)


class StagedOutputDir:
    """`with StagedOutputDir(dir, overwrite, stage) as output: ...write under output.path...; output.commit()`."""

    def __init__(self, final_dir: str, overwrite: bool, stage: str,
                 input_dirs: Sequence[str] = (), input_patterns: Sequence[str] = ()):
        if not final_dir:
            raise UserError("No output directory given: pass --output-dir DIR.")
        self.final_dir = final_dir.rstrip("/") or "/"
        self.overwrite = overwrite
        self.stage = stage
        self._marker = output_dirs.stage_marker(stage)  # refuses an unknown stage early
        self._input_dirs = tuple(input_dirs)
        self._input_patterns = tuple(input_patterns)
        self._run_id = uuid.uuid4().hex[:8]
        # Absolute: workers in other processes (a worker pool) do not share this working directory.
        staging_base = os.path.abspath(self.final_dir) if _is_local(self.final_dir) else self.final_dir
        self.path = f"{staging_base}{_STAGING}{self._run_id}"
        self._fs = BeamFilesystem()
        self._done = False

    def check_destination(self) -> str:
        """What may happen to the final directory: "new" or "replace"; a UserError otherwise."""
        if _is_local(self.final_dir) and os.path.exists(self.final_dir) and not os.path.isdir(self.final_dir):
            raise UserError(f"Output directory {self.final_dir} is a file; choose a directory.")
        return output_dirs.check_output_dir(self._fs, self.final_dir, self.stage, self.overwrite)

    def __enter__(self) -> "StagedOutputDir":
        output_dirs.check_not_overlapping(self.final_dir, self._input_dirs, self._input_patterns)
        self.check_destination()
        try:
            remove_stale_staging_dirs(self.final_dir)
        except OSError as e:  # tidying up after killed runs must never stop this one
            logging.warning("Could not look for stale staging directories of %s: %s", self.final_dir, e)
        try:
            if _is_local(self.path):
                os.makedirs(self.path)
            write_text(self.join(output_dirs.STAGE_MARKER), self._marker)
        except OSError as e:  # BeamIOError is an OSError too
            _delete(self.path)
            raise UserError(f"Cannot write the output directory {self.final_dir}: "
                            f"{_reason(e, self.path, self.final_dir)}.") from None
        return self

    def join(self, *parts: str) -> str:
        return FileSystems.join(self.path, *parts)

    def commit(self) -> None:
        """Moves the staged directory into place and marks it finished."""
        if self.check_destination() == "replace":  # the destination may have changed while the job ran
            _delete(self.final_dir)
        elif _is_local(self.final_dir) and os.path.isdir(self.final_dir):
            os.rmdir(self.final_dir)  # "new": absent or an empty directory
        _move(self.path, self.final_dir)
        write_text(FileSystems.join(self.final_dir, features.SUCCESS_MARKER), "")
        self._done = True
        logging.info("Wrote %s", self.final_dir)

    def keep_failed(self, reason: str) -> str:
        """Keeps what a failed run wrote, beside the final directory and never finished; returns its path."""
        failed = f"{self.final_dir}{_FAILED}{self._run_id}"
        _move(self.path, failed)
        self._done = True
        logging.warning("The run failed (%s); its output is kept, unfinished, in %s", reason, failed)
        return failed

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._done:
            _delete(self.path)
