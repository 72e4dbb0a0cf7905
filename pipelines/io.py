"""Edge transforms: finding and reading the corpus, writing rejected records.

Files are listed when the job starts, so a pattern that matches nothing, or a file whose format
cannot be told, is a one-line error before any worker starts. Compressed files are read through
`pipelines.compression`, so a damaged one keeps the records before the damage.
"""

from __future__ import annotations

import logging
import os
from typing import BinaryIO, Callable, Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems

from pipelines import compression, formats
from pipelines.compression import is_compressed
from pipelines.formats import Rejection
from pipelines.input_splits import InputFile, InputSplit, count_newlines, first_line_number, plan_splits
from pipelines.progress import StageProgress, format_bytes
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


def list_input_files(config: CorpusConfig) -> list[InputFile]:
    """Every file the job will read, with its format and size. Raises UserError for empty
    patterns or unknown formats."""
    if not config.inputs:
        raise UserError("No input given: pass --input PATTERN (or corpus.inputs in the job file).")
    found: dict[str, InputFile] = {}
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
        if not match.metadata_list:
            raise UserError(f"No files match input {pattern!r}.")
        for metadata in match.metadata_list:
            # Absolute: workers in other processes (a worker pool) do not share this working directory.
            path = metadata.path if "://" in metadata.path else os.path.abspath(metadata.path)
            file_format = formats.format_for_path(path) if input_format == "auto" else input_format
            found[path] = InputFile(path, file_format, metadata.size_in_bytes)
    files = [found[path] for path in sorted(found)]
    logging.info("Reading %d file(s), %s, from %d input pattern(s).", len(files),
                 format_bytes(sum(f.size for f in files)), len(config.inputs))
    return files


_RECORDS_PER_COUNT = 64  # records between two measurements of the bytes read (a tell() each)


def read_split(split: InputSplit, config: CorpusConfig, newlines_before: dict[tuple[str, int], int]
               ) -> Iterator[tuple[formats.ReadResult, int]]:
    """(record, bytes of the file as stored read since the last count) of one split: records, or
    rejections for what cannot be parsed. The bytes are measured every `_RECORDS_PER_COUNT`
    records (0 in between) and add up to the split's size; a final (None, bytes) carries the rest.
    A file that cannot be opened or read to its end adds an `unreadable_file` rejection (after
    the records read before the damage)."""
    try:
        stream = FileSystems.open(split.path, compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as e:  # a file that vanished or cannot be opened is one rejected record
        yield Rejection(rejections.UNREADABLE_FILE, split.path, f"cannot open: {str(e).splitlines()[0]}"), split.size
        return
    counted = 0
    with stream:
        bytes_of = _bytes_counter(split, stream)
        try:
            for index, result in enumerate(_records(split, stream, config, newlines_before), start=1):
                if index % _RECORDS_PER_COUNT:
                    yield result, 0
                    continue
                size = min(bytes_of(_RECORDS_PER_COUNT), split.size - counted)
                counted += size
                yield result, size
        except (OSError, EOFError, UnicodeError) as e:
            # e.g. a truncated .gz: every record before the damage was already emitted.
            yield Rejection(rejections.UNREADABLE_FILE, split.path, f"read failed: {e}"), split.size - counted
            return
    if counted < split.size:
        yield None, split.size - counted  # the bytes no record was charged with (a footer, a last line)


def read_file(file: InputFile, config: CorpusConfig) -> list[formats.ReadResult]:
    """The records of a whole file, in order (a convenience for reading a file outside a pipeline)."""
    whole = InputSplit(file.path, file.format, file.size)
    return [result for result, _ in read_split(whole, config, {}) if result is not None]


def _records(split: InputSplit, stream: BinaryIO, config: CorpusConfig, newlines_before: dict
             ) -> Iterator[formats.ReadResult]:
    if split.is_byte_range:
        first_line = first_line_number(split, newlines_before, stream)
        return formats.read_jsonl(stream, split.path, first_line, length=split.end - stream.tell())
    if split.row_groups is not None:
        return formats.read_parquet(stream, split.path, split.row_groups, split.first_row)
    return formats.read_records(compression.decompressed(stream, split.path), split.path, split.format,
                                config.text_field, config.label_field)


def _bytes_counter(split: InputSplit, stream: BinaryIO) -> Callable[[int], int]:
    """A function giving the bytes of the file that the next `records` records took: how far the
    stream moved since the last call (sequential formats, compressed ones included; a byte range
    from its start), or their equal shares of the split (Parquet, which pyarrow reads by seeking)."""
    if split.format == "parquet" and not is_compressed(split.path):
        rows = split.rows if split.rows is not None else _parquet_rows(stream)
        share = split.size // rows if rows else 0
        return lambda records: share * records
    position = split.start

    def moved(_records: int) -> int:
        nonlocal position
        if stream.closed:  # a reader that read the whole file up front (compressed Parquet) and let it go
            return 0  # the rest is charged at the end
        now = stream.tell()
        moved_by, position = max(now - position, 0), now
        return moved_by

    return moved


def _parquet_rows(stream: BinaryIO) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(stream).metadata.num_rows
    except (pa.ArrowException, OSError):
        return 0  # the reader reports the damage


class _ReadSplitsDoFn(beam.DoFn):
    """Reads each split, counting documents and bytes read into the stage's progress."""

    def __init__(self, config: CorpusConfig, progress: StageProgress | None, counts_documents: bool):
        self._config = config
        self._progress = progress
        self._counts_documents = counts_documents

    def setup(self):
        self._meter = self._progress.meter() if self._progress is not None else None

    def process(self, split: InputSplit, newlines_before: dict) -> Iterator[formats.ReadResult]:
        documents = read_bytes = 0
        for result, size in read_split(split, self._config, newlines_before):
            read_bytes += size
            if result is not None:
                documents += 1
                yield result
            if size and self._meter is not None:  # read_split measures every few records
                self._meter.add(documents=documents if self._counts_documents else 0, bytes=read_bytes)
                documents = read_bytes = 0
        if self._meter is not None and (documents or read_bytes):
            self._meter.add(documents=documents if self._counts_documents else 0, bytes=read_bytes)


class ReadCorpus(beam.PTransform):
    """Reads the input into RawRecords (or Rejections for unparsable parts), large files in splits
    (`pipelines.input_splits`).

    `splits`: `plan_splits(list_input_files(config))`, planned once when the job reads the corpus
    more than once (every read sees the same files); default: planned here. `progress`: the
    stage's progress, which this read adds its bytes to, and its documents when `counts_documents`.
    """

    def __init__(self, config: CorpusConfig, splits: list[InputSplit] | None = None,
                 progress: StageProgress | None = None, counts_documents: bool = True):
        super().__init__()
        self._config = config
        self._splits = splits
        self._progress = progress
        self._counts_documents = counts_documents

    def expand(self, pipeline):
        splits = self._splits if self._splits is not None else plan_splits(list_input_files(self._config))
        byte_ranges = [split for split in splits if split.is_byte_range]
        if byte_ranges:  # the lines before each range, counted in parallel first
            newlines_before = pvalue.AsDict(
                pipeline
                | "ListByteRanges" >> beam.Create(byte_ranges)
                | "SpreadByteRanges" >> beam.Reshuffle()
                | "CountNewlines" >> beam.Map(count_newlines))
        else:
            newlines_before = {}
        return (
            pipeline
            | "ListSplits" >> beam.Create(splits)
            | "SpreadSplits" >> beam.Reshuffle()
            | "ReadSplits" >> beam.ParDo(_ReadSplitsDoFn(self._config, self._progress, self._counts_documents),
                                         newlines_before=newlines_before)
        )


def input_total_bytes(splits: list[InputSplit]) -> int:
    """The bytes of the files the splits stand for: what a progress line counts towards."""
    return sum(split.size for split in splits)


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
