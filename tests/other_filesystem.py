"""A Beam filesystem with its own scheme, for tests that must prove no code assumes a local path.

`remote://<path>` is stored under a local root directory, but every path that reaches the
project's code carries the scheme, as a `gs://` path would: anything written with `os`, `open`
or `pathlib` instead of Beam's FileSystems lands in a local folder named `remote:` and is caught.
Beam finds the class by its scheme once this module is imported (in-process runners only).
"""

from __future__ import annotations

import os
import shutil

from apache_beam.io.filesystem import BeamIOError, FileMetadata
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "remote"
PREFIX = f"{SCHEME}://"
ROOT_ENVIRONMENT_VARIABLE = "ALBERT_PIPELINES_TEST_REMOTE_ROOT"


def _local(path: str) -> str:
    if not path.startswith(PREFIX):
        raise ValueError(f"Not a {PREFIX} path. Received: path={path!r}")
    return os.path.join(os.environ[ROOT_ENVIRONMENT_VARIABLE], path[len(PREFIX):].lstrip("/"))


def _remote(local_path: str) -> str:
    return PREFIX + os.path.relpath(local_path, os.environ[ROOT_ENVIRONMENT_VARIABLE])


class RemoteTestFileSystem(LocalFileSystem):
    @classmethod
    def scheme(cls):
        return SCHEME

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path):
        super().mkdirs(_local(path))

    def has_dirs(self):
        return False  # like object stores: a directory is a prefix of file names

    def _list(self, dir_or_prefix):
        """Every file whose path starts with `dir_or_prefix`, as an object store lists a prefix."""
        for directory, _, names in os.walk(os.environ[ROOT_ENVIRONMENT_VARIABLE]):
            for name in names:
                local_path = os.path.join(directory, name)
                if _remote(local_path).startswith(dir_or_prefix):
                    yield FileMetadata(_remote(local_path), os.path.getsize(local_path), os.path.getmtime(local_path))

    def create(self, path, *args, **kwargs):
        os.makedirs(os.path.dirname(_local(path)), exist_ok=True)
        return super().create(_local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return super().open(_local(path), *args, **kwargs)

    def copy(self, sources, destinations):
        super().copy([_local(p) for p in sources], [_local(p) for p in destinations])

    def rename(self, sources, destinations):
        for destination in destinations:
            os.makedirs(os.path.dirname(_local(destination)), exist_ok=True)
        super().rename([_local(p) for p in sources], [_local(p) for p in destinations])

    def exists(self, path):
        return os.path.exists(_local(path))

    def size(self, path):
        return os.path.getsize(_local(path))

    def last_updated(self, path):
        return os.path.getmtime(_local(path))

    def checksum(self, path):
        return str(os.path.getsize(_local(path)))

    def metadata(self, path):
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths):
        missing = {}
        for path in paths:
            local_path = _local(path)
            if os.path.isdir(local_path):
                shutil.rmtree(local_path)
            elif os.path.exists(local_path):
                os.remove(local_path)
            else:
                missing[path] = FileNotFoundError(path)
        if missing:
            raise BeamIOError("Delete operation failed", missing)
