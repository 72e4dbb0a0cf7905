"""Output directories that appear whole or not at all.

A stage writes into `<dir>.staging-<run id>` next to the final directory and moves it into place
only after the pipeline succeeded; `_SUCCESS` is written last. A failed run removes its staging
directory (a killed one leaves it, clearly named), and never leaves `<dir>` looking finished.
A finished `<dir>` is replaced only with `--overwrite`; a non-empty directory that is not a
finished output of this project is never deleted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid

from apache_beam.io.filesystems import FileSystems

from schemas import features
from schemas.errors import UserError


def _is_local(path: str) -> bool:
    return "://" not in path


def _exists(path: str) -> bool:
    return FileSystems.exists(path)


def _is_empty_directory(path: str) -> bool:
    if _is_local(path):
        return os.path.isdir(path) and not os.listdir(path)
    return not FileSystems.match([FileSystems.join(path, "**")])[0].metadata_list


def _delete(path: str) -> None:
    if _is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif _exists(path):
        FileSystems.delete([path])


def is_finished(path: str) -> bool:
    return _exists(FileSystems.join(path, features.SUCCESS_MARKER))


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


class StagedOutputDir:
    """Context manager: `with StagedOutputDir(dir, overwrite) as staging: ...; staging.commit()`."""

    def __init__(self, final_dir: str, overwrite: bool):
        if not final_dir:
            raise UserError("No output directory given: pass --output-dir DIR.")
        self.final_dir = final_dir.rstrip("/")
        self.overwrite = overwrite
        self.path = f"{self.final_dir}.staging-{uuid.uuid4().hex[:8]}"
        self._committed = False

    def check_destination(self) -> None:
        if not _exists(self.final_dir) or _is_empty_directory(self.final_dir):
            return
        if not is_finished(self.final_dir):
            raise UserError(f"Output directory {self.final_dir} exists and is not a finished run of this stage; "
                            f"remove it or choose another --output-dir.")
        if not self.overwrite:
            raise UserError(f"Output directory {self.final_dir} already holds a finished run; "
                            f"pass --overwrite to replace it.")

    def __enter__(self) -> "StagedOutputDir":
        self.check_destination()
        if _is_local(self.path):
            os.makedirs(self.path)
        return self

    def join(self, *parts: str) -> str:
        return FileSystems.join(self.path, *parts)

    def commit(self) -> None:
        """Moves the staged directory into place and marks it finished."""
        self.check_destination()  # the destination may have changed while the job ran
        if _exists(self.final_dir):
            _delete(self.final_dir)
        if _is_local(self.path):
            os.rename(self.path, self.final_dir)
        else:
            sources = [m.path for m in FileSystems.match([self.join("**")])[0].metadata_list]
            destinations = [self.final_dir + s[len(self.path):] for s in sources]
            FileSystems.rename(sources, destinations)
            _delete(self.path)
        write_text(FileSystems.join(self.final_dir, features.SUCCESS_MARKER), "")
        self._committed = True
        logging.info("Wrote %s", self.final_dir)

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            _delete(self.path)
