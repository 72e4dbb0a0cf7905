"""Edge transforms: finding and reading the corpus, writing rejected records.

Files are listed when the job starts, so a pattern that matches nothing, or a file whose format
cannot be told, is a one-line error before any worker starts. Compressed files are read through
`pipelines.compression`, so a damaged one keeps the records before the damage.
"""

from __future__ import annotations

import logging
import os
from typing import Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines import compression, formats
from pipelines.formats import Rejection
from schemas import features, rejections
from schemas.config import CorpusConfig
from schemas.errors import UserError


def _is_directory(pattern: str) -> bool:
    if pattern.endswith("/"):
        return True
    if "://" in pattern:
        return False
    return os.path.isdir(pattern)


def text_dirs_directories(config: CorpusConfig) -> list[str]:
    """The inputs that are text-dirs corpora: directories read as a whole (`<dir>/<label>/<document>`)."""
    return [pattern for pattern in config.inputs if _is_directory(pattern)]


def list_input_files(config: CorpusConfig) -> list[tuple[str, str]]:
    """Every (path, format) the job will read. Raises UserError for empty patterns or unknown formats."""
    if not config.inputs:
        raise UserError("No input given: pass --input PATTERN (or corpus.inputs in the job file).")
    found: dict[str, str] = {}
    for pattern in config.inputs:
        input_format = config.format
        if _is_directory(pattern):
            # A directory is a text-dirs corpus: <dir>/<label>/<document>.
            pattern = pattern.rstrip("/") + "/*/*"
            input_format = "textdirs" if input_format == "auto" else input_format
        try:
            (match,) = FileSystems.match([pattern])
        except Exception as e:  # Beam raises BeamIOError/ValueError/... depending on the filesystem
            raise UserError(f"Cannot list input {pattern!r}: {str(e).splitlines()[0]}") from None
        paths = sorted(m.path for m in match.metadata_list)
        if not paths:
            raise UserError(f"No files match input {pattern!r}.")
        for path in paths:
            found[path] = formats.format_for_path(path) if input_format == "auto" else input_format
    logging.info("Reading %d file(s) from %d input pattern(s).", len(found), len(config.inputs))
    return sorted(found.items())


def read_file(path: str, input_format: str, config: CorpusConfig) -> Iterator[formats.ReadResult]:
    """The records of one input file; a file that cannot be opened or read to its end adds an
    `unreadable_file` rejection (after the records read before the damage)."""
    try:
        stream = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as e:  # a file that vanished or cannot be opened is one rejected record
        yield Rejection(rejections.UNREADABLE_FILE, path, f"cannot open: {str(e).splitlines()[0]}")
        return
    with compression.decompressed(stream, path) as stream:
        try:
            yield from formats.read_records(stream, path, input_format, config.text_field, config.label_field)
        except (OSError, EOFError, UnicodeError) as e:
            # e.g. a truncated .gz: every record before the damage was already emitted.
            yield Rejection(rejections.UNREADABLE_FILE, path, f"read failed: {e}")


class ReadCorpus(beam.PTransform):
    """Reads the input files into RawRecords (or Rejections for unparsable parts).

    `files`: the (path, format) pairs of `list_input_files`, when the job reads the corpus more
    than once (listed once, so every read sees the same files); default: listed here.
    """

    def __init__(self, config: CorpusConfig, files: list[tuple[str, str]] | None = None):
        super().__init__()
        self._config = config
        self._files = files

    def expand(self, pipeline):
        files = self._files if self._files is not None else list_input_files(self._config)
        return (
            pipeline
            | "ListFiles" >> beam.Create(files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFiles" >> beam.FlatMap(lambda listed, config: read_file(*listed, config), config=self._config)
        )


class WriteRejected(beam.PTransform):
    """Writes every rejection as one JSON object per line into `<output_dir>/rejected/`."""

    def __init__(self, output_dir: str):
        super().__init__()
        self._prefix = FileSystems.join(output_dir, features.REJECTED_DIR, "rejected")

    def expand(self, rejected: beam.PCollection[Rejection]):
        return (
            rejected
            | "ToJson" >> beam.Map(Rejection.to_json)
            | "WriteJsonLines" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl")
        )
