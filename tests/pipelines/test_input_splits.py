"""Large files read in splits: the same records and sources as a whole-file read, and every byte
counted once for progress (no pipeline here, except the one slow check of ReadCorpus)."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipelines import io as pipeline_io
from pipelines.formats import RawRecord, Rejection
from pipelines.input_splits import InputFile, count_newlines, plan_splits
from schemas.config import CorpusConfig

CONFIG = CorpusConfig()

JSONL_LINES = [
    "\ufeff" + json.dumps({"text": "first line after a byte order mark", "label": "a"}),
    json.dumps({"text": "ünïcödé text, several bytes per character", "label": "b"}),
    "",  # a blank line: skipped, but counted in the line numbers
    "{not json",
    json.dumps({"text": "x", "label": "a"}),
    json.dumps({"text": "a longer line " * 12, "label": "b"}),
    "[1, 2]",
    json.dumps({"text": "the last line has no newline", "label": "a"}),
]


def read_in_splits(file: InputFile, split_bytes: int) -> tuple[list, list[int]]:
    """(every record of every split, in order; the bytes each split counted), as the pipeline reads them."""
    splits = plan_splits([file], split_bytes)
    newlines_before = dict(count_newlines(split) for split in splits if split.is_byte_range)
    results, split_bytes_counted = [], []
    for split in splits:
        counted = 0
        for result, size in pipeline_io.read_split(split, CONFIG, newlines_before):
            counted += size
            if result is not None:
                results.append(result)
        split_bytes_counted.append(counted)
    return results, split_bytes_counted


def comparable(results) -> list[tuple]:
    return [(r.source, r.fields) if isinstance(r, RawRecord) else (r.source, r.reason, r.detail) for r in results]


@pytest.fixture
def jsonl_file(tmp_path) -> InputFile:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes("\n".join(JSONL_LINES).encode("utf-8"))
    return InputFile(str(path), "jsonl", path.stat().st_size)


def test_a_jsonl_file_cut_anywhere_gives_the_records_and_line_numbers_of_a_whole_read(jsonl_file):
    whole = comparable(pipeline_io.read_file(jsonl_file, CONFIG))
    assert [source.rsplit(":", 1)[1] for source, *_ in whole] == ["1", "2", "4", "5", "6", "7", "8"]
    # Every split size from one byte up: boundaries fall inside lines, on newlines and just after them.
    for split_bytes in range(1, jsonl_file.size + 1):
        results, counted = read_in_splits(jsonl_file, split_bytes)
        assert comparable(results) == whole, split_bytes
        assert sum(counted) == jsonl_file.size, split_bytes


def test_each_count_of_bytes_is_what_the_records_since_the_last_count_took(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text("".join(json.dumps({"text": f"document {i:04d}", "label": "a"}) + "\n" for i in range(1000)))
    line_bytes = path.stat().st_size // 1000
    file = InputFile(str(path), "jsonl", path.stat().st_size)
    splits = plan_splits([file], split_bytes=file.size // 3)
    newlines_before = dict(count_newlines(split) for split in splits)

    # A range after the first: its counts start at its own start, not at the top of the file.
    counts = [size for _, size in pipeline_io.read_split(splits[1], CONFIG, newlines_before) if size]
    assert max(counts[:-1]) <= (pipeline_io._RECORDS_PER_COUNT + 1) * line_bytes
    # Parquet: each count is the equal shares of the rows read since the last one.
    parquet_path = tmp_path / "long.parquet"
    pq.write_table(pa.table({"text": [f"document {i}" for i in range(200)], "label": ["a"] * 200}), parquet_path)
    size = parquet_path.stat().st_size
    (split,) = plan_splits([InputFile(str(parquet_path), "parquet", size)], split_bytes=size)
    parquet_counts = [count for _, count in pipeline_io.read_split(split, CONFIG, {}) if count]
    assert parquet_counts[:3] == [pipeline_io._RECORDS_PER_COUNT * (size // 200)] * 3
    assert sum(parquet_counts) == size


def test_a_small_or_compressed_or_csv_file_is_one_split(tmp_path):
    gz = tmp_path / "corpus.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "a", "label": "b"}\n' * 100))
    csv = tmp_path / "corpus.csv"
    csv.write_text("text,label\n" + '"a\nmulti-line field",b\n' * 100)
    files = [InputFile(str(gz), "jsonl", gz.stat().st_size), InputFile(str(csv), "csv", csv.stat().st_size)]

    splits = plan_splits(files, split_bytes=16)

    assert [(s.path, s.end, s.row_groups) for s in splits] == [(str(gz), None, None), (str(csv), None, None)]
    assert plan_splits([InputFile(str(csv), "jsonl", 16)], split_bytes=16)[0].end is None  # not above the size


def test_a_compressed_file_counts_its_stored_bytes(tmp_path):
    path = tmp_path / "corpus.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(b'{"text": "document %d", "label": "b"}\n' % i for i in range(500))))
    file = InputFile(str(path), "jsonl", path.stat().st_size)

    results, counted = read_in_splits(file, split_bytes=64)

    assert len(results) == 500 and counted == [file.size]


@pytest.fixture
def parquet_file(tmp_path) -> InputFile:
    path = tmp_path / "corpus.parquet"
    table = pa.table({"text": [f"document {i}" for i in range(23)], "label": ["a", "b"] * 11 + ["a"]})
    pq.write_table(table, path, row_group_size=5)  # five row groups: 5, 5, 5, 5, 3 rows
    return InputFile(str(path), "parquet", path.stat().st_size)


def test_a_parquet_file_is_split_by_row_groups_keeping_each_rows_index(parquet_file):
    whole = comparable(pipeline_io.read_file(parquet_file, CONFIG))
    assert [source for source, _ in whole] == [f"{parquet_file.path}#{i}" for i in range(23)]

    splits = plan_splits([parquet_file], split_bytes=parquet_file.size // 4)
    results, counted = read_in_splits(parquet_file, parquet_file.size // 4)

    assert len(splits) > 1
    assert [group for split in splits for group in split.row_groups] == [0, 1, 2, 3, 4]
    assert comparable(results) == whole
    assert sum(counted) == sum(split.size for split in splits)


def test_a_damaged_parquet_file_is_one_split_read_as_an_unreadable_file(tmp_path):
    path = tmp_path / "corpus.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 200)
    file = InputFile(str(path), "parquet", path.stat().st_size)

    (split,) = plan_splits([file], split_bytes=16)
    results, counted = read_in_splits(file, split_bytes=16)

    assert split.row_groups is None
    assert [type(r) for r in results] == [Rejection] and counted == [file.size]


@pytest.mark.slow
def test_read_corpus_reads_a_split_file_once_with_every_source(jsonl_file, parquet_file):
    config = CorpusConfig(inputs=(jsonl_file.path, parquet_file.path))
    expected = [r.source for f in (jsonl_file, parquet_file) for r in pipeline_io.read_file(f, config)]

    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        read = pipeline | pipeline_io.ReadCorpus(config, plan_splits(pipeline_io.list_input_files(config), 40))
        assert_that(read | beam.Map(lambda r: r.source), equal_to(expected))
