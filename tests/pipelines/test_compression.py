"""Decompressing input streams: every compression Beam names, concatenated streams, and damage noticed."""

import bz2
import gzip
import io
import lzma
import zlib

import pytest
import zstandard

from pipelines import compression

LINES = [b'{"text": "document %d"}\n' % i for i in range(3000)]
DATA = b"".join(LINES)

COMPRESSORS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".deflate": zlib.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
    ".zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    ".xz": lzma.compress,
    ".lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
}


def read_lines(data: bytes, name: str) -> list[bytes]:
    return list(compression.decompressed(io.BytesIO(data), name))


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_each_compression_is_read_back_line_by_line(suffix):
    assert read_lines(COMPRESSORS[suffix](DATA), f"corpus.jsonl{suffix}") == LINES


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_concatenated_compressed_streams_are_read_one_after_the_other(suffix):
    first, second = DATA[:1000], DATA[1000:]
    data = COMPRESSORS[suffix](first) + COMPRESSORS[suffix](second)

    assert b"".join(read_lines(data, f"corpus.jsonl{suffix}")) == DATA


def test_an_uncompressed_name_gets_the_stream_itself():
    stream = io.BytesIO(DATA)

    assert compression.decompressed(stream, "corpus.jsonl") is stream


@pytest.mark.parametrize("suffix", [".gz", ".deflate", ".xz"])
def test_a_truncated_stream_yields_the_lines_before_the_cut_then_raises(suffix):
    data = COMPRESSORS[suffix](DATA)
    reader = compression.decompressed(io.BytesIO(data[: len(data) * 2 // 3]), f"corpus.jsonl{suffix}")
    read = []

    with pytest.raises(OSError, match="truncated"):
        for line in reader:
            read.append(line)

    assert 0 < len(read) < len(LINES)
    assert read == LINES[: len(read)]  # complete lines only: the cut one is part of the damage


@pytest.mark.parametrize("suffix", [".bz2", ".zst"])
def test_a_truncated_stream_of_a_block_compression_raises(suffix):
    # bzip2 and zstd decompress whole blocks: the lines of the cut block are lost with it.
    data = COMPRESSORS[suffix](DATA)

    with pytest.raises(OSError, match="truncated"):
        read_lines(data[:-10], f"corpus.jsonl{suffix}")


@pytest.mark.parametrize("data", [b"this is not gzip data at all", gzip.compress(DATA)[:10] + b"\xff" * 200],
                         ids=["not_gzip", "corrupt_after_the_header"])
def test_corrupt_data_raises_an_os_error(data):
    with pytest.raises(OSError, match="corrupt"):
        read_lines(data, "corpus.jsonl.gz")


def test_an_empty_compressed_file_is_an_empty_stream():
    assert read_lines(b"", "corpus.jsonl.gz") == []


@pytest.mark.parametrize("name, expected", [
    ("a.jsonl.gz", True), ("a.csv.bz2", True), ("a.tsv.zst", True), ("a.tsv.zstd", True), ("a.x.deflate", True),
    ("a.jsonl.xz", True), ("a.jsonl.lzma", True), ("a.jsonl", False), ("a.GZ", True), ("a.tgz", False),
])
def test_is_compressed_follows_beams_suffixes(name, expected):
    assert compression.is_compressed(name) is expected
