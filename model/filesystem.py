"""Files at user-given paths, on any filesystem TensorFlow knows (local, gs://, ram://, ...).

Everything the trainer reads or writes goes through `tf.io.gfile`, never `open` or `pathlib`:
those treat `gs://bucket/model` as a local folder named "gs:" and report success.
"""

from __future__ import annotations

import posixpath

import tensorflow as tf


class GfileFilesystem:
    """`schemas.output_dirs.Filesystem` over `tf.io.gfile`, for the output-directory checks."""

    def exists(self, path: str) -> bool:
        return tf.io.gfile.exists(path)

    def list_names(self, path: str) -> list[str]:
        return [name.rstrip("/") for name in tf.io.gfile.listdir(path)]  # object stores end folders with "/"

    def read_text(self, path: str) -> str:
        return read_text(path)


def join(directory: str, *names: str) -> str:
    """`directory/name/...` with "/" whatever the local OS, as every TensorFlow filesystem expects."""
    return "/".join([directory.rstrip("/"), *names])


def read_text(path: str) -> str:
    with tf.io.gfile.GFile(path) as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> str:
    """Writes `data` to `path`, creating missing parent folders; returns `path`."""
    parent = posixpath.dirname(path)
    if parent and not parent.endswith(":"):  # "ram://x" has the parent "ram:/", which needs no folder
        tf.io.gfile.makedirs(parent)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)
    return path


def write_text(path: str, text: str) -> str:
    return write_bytes(path, text.encode("utf-8"))


def replace_text(path: str, text: str) -> str:
    """Writes `path` through a temporary file and a rename: a kill mid-write keeps the old version."""
    temporary = f"{path}.tmp"
    write_text(temporary, text)
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path


def move_directory(source: str, target: str) -> None:
    """Renames the directory `source` to `target`, with every file under it.

    One rename where the filesystem moves a directory's files with it (local disks, GCS): the
    target appears whole or not at all. TensorFlow's in-memory ram:// renames only the directory's
    own entry and leaves its files under the old name; those are then copied over one by one.
    """
    prefix = len(join(source, ""))
    files = [join(root, name)[prefix:] for root, _, names in tf.io.gfile.walk(source) for name in names]
    tf.io.gfile.rename(source, target, overwrite=False)
    for relative in files:
        # ram:// also lists phantoms (assets.extra/ shows up as assets/.extra too): move real files only.
        if not tf.io.gfile.exists(join(target, relative)) and tf.io.gfile.exists(join(source, relative)):
            tf.io.gfile.makedirs(posixpath.dirname(join(target, relative)))
            tf.io.gfile.copy(join(source, relative), join(target, relative))
            tf.io.gfile.remove(join(source, relative))
