"""Record readers for each input format, over an open (decompressed) binary stream. No pipeline here.

Each reader yields `RawRecord`s (a field mapping and where it came from) or `Rejection`s for
what could not be parsed. Bytes that are not valid UTF-8 are kept (as lone surrogates or raw
bytes) so that validation can name the problem instead of the reader crashing on it.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import os
import struct
from typing import Any, BinaryIO, Iterator, Union

from pipelines.compression import is_compressed
from schemas import rejections
from schemas.errors import UserError

TEXT_FILE_FIELD = "path"  # text dirs: the file's path is offered as a field (usable as --id-field)

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".tfrecord": "tfrecord",
    ".tfrecords": "tfrecord",
    ".txt": "textdirs",
    "": "textdirs",
}


@dataclasses.dataclass(frozen=True)
class RawRecord:
    fields: dict[str, Any]
    source: str


@dataclasses.dataclass(frozen=True)
class Rejection:
    reason: str
    source: str
    detail: str
    record: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


ReadResult = Union[RawRecord, Rejection]


def excerpt(value: Any) -> str:
    """A short, JSON-safe copy of a bad record for the rejected/ output."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text[: rejections.RECORD_EXCERPT_CHARS]


def format_for_path(path: str) -> str:
    """Infers the input format from a file name (a compression suffix, as Beam knows them, ignored)."""
    name = path.rstrip("/")
    if is_compressed(name):
        name = os.path.splitext(name)[0]
    extension = os.path.splitext(os.path.basename(name))[1].lower()
    if extension not in _EXTENSIONS:
        raise UserError(f"Cannot tell the format of {path} from its extension '{extension}'; "
                        f"pass --format (csv, tsv, jsonl, parquet, tfrecord, textdirs).")
    return _EXTENSIONS[extension]


def _text_lines(stream: BinaryIO) -> io.TextIOWrapper:
    # surrogateescape keeps undecodable bytes so validation can reject just that record.
    return io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")


def read_delimited(stream: BinaryIO, path: str, delimiter: str) -> Iterator[ReadResult]:
    """CSV/TSV with a header row. Source: `path:line` of the record's first line."""
    csv.field_size_limit(2**31 - 1)  # documents can be long; the default cap is 128 KiB per field
    lines = _text_lines(stream)
    first = lines.readline()
    if first.startswith("\ufeff"):
        first = first[1:]
    header = next(csv.reader([first], delimiter=delimiter), None)
    if not header:
        yield Rejection(rejections.UNREADABLE_FILE, path, "the file has no header row")
        return
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    line_number = 1
    while True:
        start = line_number + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            line_number = reader.line_num + 1
            yield Rejection(rejections.UNPARSABLE_RECORD, f"{path}:{start}", f"CSV error: {e}")
            continue
        line_number = reader.line_num + 1
        if not row:  # blank line: not a record
            continue
        if len(row) != len(header):
            yield Rejection(rejections.UNPARSABLE_RECORD, f"{path}:{start}",
                            f"expected {len(header)} fields as in the header, found {len(row)}",
                            excerpt(delimiter.join(row)))
            continue
        yield RawRecord(dict(zip(header, row)), f"{path}:{start}")


def read_jsonl(stream: BinaryIO, path: str, first_line: int = 1, length: int | None = None) -> Iterator[ReadResult]:
    """One JSON object per line; blank lines are skipped. Source: `path:line`.

    A split of a file: `stream` at the start of line `first_line`, and only the lines that start
    within `length` bytes from there are read.
    """
    position = 0
    for line_number, raw_line in enumerate(stream, start=first_line):
        if length is not None and position >= length:
            return
        position += len(raw_line)
        line = raw_line.decode("utf-8", errors="surrogateescape")
        if line_number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        if not line.strip():
            continue
        source = f"{path}:{line_number}"
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as e:
            yield Rejection(rejections.UNPARSABLE_RECORD, source, f"invalid JSON: {e}", excerpt(raw_line))
            continue
        if not isinstance(value, dict):
            yield Rejection(rejections.UNPARSABLE_RECORD, source,
                            f"expected a JSON object, found {type(value).__name__}", excerpt(line))
            continue
        yield RawRecord(value, source)


def read_parquet(stream: BinaryIO, path: str, row_groups: tuple[int, ...] | None = None,
                 first_row: int = 0) -> Iterator[ReadResult]:
    """Rows of a Parquet file, or of its `row_groups` (whose first row is row `first_row`).
    Source: `path#row` (0-based, in the file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if not stream.seekable():  # Parquet's footer is at the end: a decompressed stream is read whole
            stream = io.BytesIO(stream.read())
        parquet_file = pq.ParquetFile(stream)
        batches = parquet_file.iter_batches(batch_size=4096, row_groups=row_groups)
        row_index = first_row
        for batch in batches:
            columns = {name: batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
            for offset in range(batch.num_rows):
                fields = {name: values[offset] for name, values in columns.items()}
                yield RawRecord(fields, f"{path}#{row_index}")
                row_index += 1
    except (pa.ArrowException, OSError) as e:
        yield Rejection(rejections.UNREADABLE_FILE, path, f"not a readable Parquet file: {e}")


def _masked_crc32c(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def iter_tfrecords(stream: BinaryIO) -> Iterator[bytes]:
    """The TFRecord framing (length, crc, data, crc), checking both checksums."""
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise ValueError("truncated record header")
        length, length_crc = struct.unpack("<QI", header)
        if _masked_crc32c(header[:8]) != length_crc:
            raise ValueError("corrupt record length (checksum mismatch)")
        data = stream.read(length)
        footer = stream.read(4)
        if len(data) < length or len(footer) < 4:
            raise ValueError("truncated record")
        if _masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise ValueError("corrupt record data (checksum mismatch)")
        yield data


def _feature_values(feature) -> list[Any]:
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def read_tfrecord(stream: BinaryIO, path: str) -> Iterator[ReadResult]:
    """tf.Example records. A feature with one value becomes that value, several become a list."""
    from tensorflow.core.example import example_pb2
    from google.protobuf.message import DecodeError

    index = 0  # the record being read, also when the framing is what fails
    try:
        for data in iter_tfrecords(stream):
            source = f"{path}#{index}"
            index += 1
            try:
                example = example_pb2.Example.FromString(data)
            except DecodeError as e:
                yield Rejection(rejections.UNPARSABLE_RECORD, source, f"not a tf.Example: {e}", excerpt(data[:200]))
                continue
            fields = {}
            for name, feature in example.features.feature.items():
                values = _feature_values(feature)
                fields[name] = values[0] if len(values) == 1 else (values or None)
            yield RawRecord(fields, source)
    except (ValueError, OSError, EOFError) as e:
        yield Rejection(rejections.UNREADABLE_FILE, f"{path}#{index}", f"TFRecord file is damaged: {e}")


def read_text_file(stream: BinaryIO, path: str, text_field: str, label_field: str) -> Iterator[ReadResult]:
    """Text dirs: the whole file is one document, its label the parent folder's name."""
    label = os.path.basename(os.path.dirname(path.rstrip("/")))
    data = stream.read()
    yield RawRecord({text_field: data, label_field: label or None, TEXT_FILE_FIELD: path}, path)


def read_records(stream: BinaryIO, path: str, input_format: str, text_field: str, label_field: str
                 ) -> Iterator[ReadResult]:
    """Dispatches to the reader for `input_format` ('auto' is resolved from the path)."""
    if input_format == "auto":
        input_format = format_for_path(path)
    if input_format == "csv":
        return read_delimited(stream, path, ",")
    if input_format == "tsv":
        return read_delimited(stream, path, "\t")
    if input_format == "jsonl":
        return read_jsonl(stream, path)
    if input_format == "parquet":
        return read_parquet(stream, path)
    if input_format == "tfrecord":
        return read_tfrecord(stream, path)
    if input_format == "textdirs":
        return read_text_file(stream, path, text_field, label_field)
    raise UserError(f"Unknown input format {input_format!r}.")


def utf8_codec_ok(text: str) -> bool:
    """False when the text holds bytes that were not valid UTF-8 (kept as lone surrogates)."""
    try:
        codecs.encode(text, "utf-8")
    except UnicodeEncodeError:
        return False
    return True
