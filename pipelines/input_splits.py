"""Input files cut into splits that workers read in parallel, every record keeping its source.

A large JSON Lines file is cut into byte ranges and a large Parquet file into runs of row groups,
so a runner spreads one big file over its workers instead of handing it to one, and no worker
holds more than a split's records at a time. Sources stay what a whole-file read gives:
- `path:line`: a split owns the lines that start inside its byte range; the lines before it are
  the newlines counted in the splits before it (`count_newlines`, one pass over each split);
- `path#row`: the rows before a run of row groups come from the file's footer.
Other files are read whole: CSV and TSV fields may hold newlines, TFRecord files have no marks
to resynchronize on, and a compressed file can only be read from its start.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import BinaryIO, Iterable

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.compression import is_compressed

SPLIT_BYTES = 64 * 1024 * 1024  # Beam's file sources aim at bundles of this order
_CHUNK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class InputFile:
    path: str
    format: str
    size: int  # bytes as stored (compressed, when it is)


@dataclasses.dataclass(frozen=True)
class InputSplit:
    """A part of one input file, or all of it.

    JSON Lines: the lines starting in [start, end). Parquet: `row_groups`, whose first row is row
    `first_row` of the file. Any format: `row_groups` None and `end` None is the whole file.
    """

    path: str
    format: str
    size: int  # bytes of the file this split stands for (what progress counts)
    start: int = 0
    end: int | None = None
    row_groups: tuple[int, ...] | None = None
    first_row: int = 0
    rows: int | None = None  # Parquet splits: rows in the split

    @property
    def is_byte_range(self) -> bool:
        return self.end is not None


def plan_splits(files: Iterable[InputFile], split_bytes: int = SPLIT_BYTES) -> list[InputSplit]:
    """Every file as one split, or as several when it is large and its format can be cut."""
    files = list(files)
    splits: list[InputSplit] = []
    for file in files:
        if file.size > split_bytes and not is_compressed(file.path):
            if file.format == "jsonl":
                splits.extend(_byte_ranges(file, split_bytes))
                continue
            if file.format == "parquet":
                splits.extend(_row_group_runs(file, split_bytes))
                continue
        splits.append(InputSplit(file.path, file.format, file.size))
    if len(splits) > len(files):
        logging.info("Reading %d split(s) of the input files.", len(splits))
    return splits


def _byte_ranges(file: InputFile, split_bytes: int) -> list[InputSplit]:
    starts = range(0, file.size, split_bytes)
    return [InputSplit(file.path, file.format, min(split_bytes, file.size - start), start=start,
                       end=min(start + split_bytes, file.size)) for start in starts]


def _row_group_runs(file: InputFile, split_bytes: int) -> list[InputSplit]:
    """Consecutive row groups of about `split_bytes` each (by their share of the file's rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with FileSystems.open(file.path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            metadata = pq.ParquetFile(stream).metadata
    except (pa.ArrowException, OSError):
        return [InputSplit(file.path, file.format, file.size)]  # the reader reports what is wrong with it
    total_rows = max(metadata.num_rows, 1)
    splits, group_start, first_row, rows, size = [], 0, 0, 0, 0.0
    for group in range(metadata.num_row_groups):
        rows += metadata.row_group(group).num_rows
        size += file.size * metadata.row_group(group).num_rows / total_rows
        if size >= split_bytes or group == metadata.num_row_groups - 1:
            splits.append(InputSplit(file.path, file.format, round(size), first_row=first_row, rows=rows,
                                     row_groups=tuple(range(group_start, group + 1))))
            group_start, first_row, rows, size = group + 1, first_row + rows, 0, 0.0
    return splits or [InputSplit(file.path, file.format, file.size)]


def count_newlines(split: InputSplit) -> tuple[tuple[str, int], int]:
    """((path, start), the newlines in the split's bytes [start, end)): what the next splits of
    the file add up to number their lines."""
    remaining = split.end - split.start
    count = 0
    with FileSystems.open(split.path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
        stream.seek(split.start)
        while remaining > 0:
            chunk = stream.read(min(_CHUNK_BYTES, remaining))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return (split.path, split.start), count


def first_line_number(split: InputSplit, newlines_before: dict[tuple[str, int], int], stream: BinaryIO) -> int:
    """Positions `stream` (open on the split's file) at the first line the split owns and returns
    that line's number (1-based). A line belongs to the split its first byte falls in."""
    if split.start == 0:
        return 1
    lines = sum(count for (path, start), count in newlines_before.items() if path == split.path and start < split.start)
    stream.seek(split.start - 1)
    if stream.read(1) == b"\n":
        return lines + 1
    stream.readline()  # the end of a line the previous split owns
    return lines + 2
