"""Finding and reading input files (pipelines/io.py), called directly: no pipeline runs here."""

import bz2
import gzip
import lzma
import zlib

import pytest
import zstandard

from pipelines import io as pipeline_io
from pipelines.documents import Document, to_document
from pipelines.formats import RawRecord, Rejection
from pipelines.input_splits import InputFile
from schemas import rejections
from schemas.config import CorpusConfig
from schemas.errors import UserError
from tests.conftest import make_documents, write_corpus

CONFIG = CorpusConfig(id_field="id")
COMPRESSORS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".deflate": zlib.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
    ".xz": lzma.compress,
}


def read_all(config: CorpusConfig) -> list:
    """Every record (or rejection) the stage would read for `config.inputs`, file by file."""
    return [result for file in pipeline_io.list_input_files(config) for result in pipeline_io.read_file(file, config)]


def documents_of(results) -> list[tuple]:
    """(id, text, labels) of the documents the records validate into, sorted."""
    documents = [to_document(r, CONFIG) for r in results if isinstance(r, RawRecord)]
    assert all(isinstance(d, Document) for d in documents), documents
    return sorted((d.id, d.text, d.labels) for d in documents)


def compress_file(path, suffix: str) -> str:
    compressed = f"{path}{suffix}"
    with open(path, "rb") as f, open(compressed, "wb") as out:
        out.write(COMPRESSORS[suffix](f.read()))
    return compressed


@pytest.fixture(scope="module")
def jsonl_documents(tmp_path_factory):
    path = write_corpus(make_documents(30), tmp_path_factory.mktemp("jsonl"), "jsonl")
    return documents_of(read_all(CorpusConfig(inputs=(path,), id_field="id")))


@pytest.mark.parametrize("input_format, suffix", [
    ("csv", ""), ("tsv", ""), ("parquet", ""), ("tfrecord", ""),
    ("jsonl", ".gz"), ("csv", ".gz"), ("tsv", ".gz"), ("jsonl", ".bz2"), ("csv", ".deflate"), ("tsv", ".zst"),
    ("jsonl", ".xz"), ("parquet", ".gz"), ("tfrecord", ".gz"),
])
def test_every_format_and_compression_reads_to_the_same_documents_as_plain_jsonl(
        tmp_path, input_format, suffix, jsonl_documents):
    path = write_corpus(make_documents(30), tmp_path, input_format)
    if suffix:
        path = compress_file(path, suffix)

    results = read_all(CorpusConfig(inputs=(path,), id_field="id"))

    assert not [r for r in results if isinstance(r, Rejection)]
    assert documents_of(results) == jsonl_documents


def test_text_dirs_corpus_reads_one_document_per_file_labelled_by_its_folder(tmp_path, jsonl_documents):
    corpus = write_corpus(make_documents(30), tmp_path, "textdirs")
    config = CorpusConfig(inputs=(corpus,), id_field="id")

    results = read_all(config)

    documents = [to_document(r, CorpusConfig(id_field="path")) for r in results]
    assert sorted((d.text, d.labels) for d in documents) == sorted((t, l) for _, t, l in jsonl_documents)
    assert pipeline_io.text_dirs_directories(config) == [corpus]


@pytest.mark.parametrize("input_format", ["jsonl", "csv"])
def test_a_truncated_gzip_file_keeps_the_records_before_the_damage_then_is_unreadable(tmp_path, input_format):
    path = compress_file(write_corpus(make_documents(400), tmp_path, input_format), ".gz")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])

    results = read_all(CorpusConfig(inputs=(path,), id_field="id"))

    *records, last = results
    assert all(isinstance(r, RawRecord) for r in records) and len(records) > 50
    assert isinstance(last, Rejection) and last.reason == rejections.UNREADABLE_FILE
    assert last.source == path and "truncated" in last.detail
    expected_ids = [d["id"] for d in make_documents(400)][: len(records)]
    assert [r.fields["id"] for r in records] == expected_ids  # in order, none lost
    assert [r.fields["label"] for r in records] == [d["label"] for d in make_documents(400)][: len(records)]


def test_a_file_that_is_not_compressed_data_is_one_unreadable_file(tmp_path):
    path = tmp_path / "corpus.jsonl.gz"
    path.write_text('{"text": "plain text under a .gz name"}\n')

    assert [(r.reason, r.source) for r in read_all(CorpusConfig(inputs=(str(path),)))] == [
        (rejections.UNREADABLE_FILE, str(path))]


def test_an_empty_compressed_file_has_no_records(tmp_path):
    path = tmp_path / "corpus.jsonl.gz"
    path.write_bytes(b"")

    assert read_all(CorpusConfig(inputs=(str(path),))) == []


def test_a_file_that_vanished_after_listing_is_one_unreadable_file(tmp_path):
    path = str(tmp_path / "gone.jsonl")

    (rejection,) = pipeline_io.read_file(InputFile(path, "jsonl", 0), CONFIG)

    assert (rejection.reason, rejection.source) == (rejections.UNREADABLE_FILE, path)


@pytest.mark.parametrize("inputs, message", [
    ((), "No input given"),
    (("{tmp}/nothing/*.jsonl",), "No files match"),
    (("{tmp}/corpus.xml",), "Cannot tell the format"),
])
def test_listing_the_inputs_refuses_what_cannot_be_read(tmp_path, inputs, message):
    (tmp_path / "corpus.xml").write_text("<docs/>")

    with pytest.raises(UserError, match=message):
        pipeline_io.list_input_files(CorpusConfig(inputs=tuple(p.format(tmp=tmp_path) for p in inputs)))
