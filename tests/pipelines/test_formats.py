"""Record readers over in-memory streams: fields, sources and rejections for each input format."""

import csv
import gzip
import io
import json
import re

import pytest

from pipelines import formats
from pipelines.formats import RawRecord, Rejection
from schemas import rejections
from schemas.errors import UserError


def read_csv(data: bytes, path="f.csv"):
    return list(formats.read_delimited(io.BytesIO(data), path, ","))


def read_tsv(data: bytes, path="f.tsv"):
    return list(formats.read_delimited(io.BytesIO(data), path, "\t"))


def read_jsonl(data: bytes, path="f.jsonl"):
    return list(formats.read_jsonl(io.BytesIO(data), path))


def gzipped(data: bytes) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(data)), mode="rb")


def summary(results):
    """(kind, source, fields or reason) per result, to compare a whole read at once."""
    return [("record", r.source, r.fields) if isinstance(r, RawRecord) else ("rejected", r.source, r.reason)
            for r in results]


# --- CSV / TSV -------------------------------------------------------------------------------


def test_csv_rows_become_records_keyed_by_the_header_with_their_line_as_source():
    results = read_csv(b"id,text,label\n1,hello world,pos\n2,bye,neg\n")

    assert summary(results) == [
        ("record", "f.csv:2", {"id": "1", "text": "hello world", "label": "pos"}),
        ("record", "f.csv:3", {"id": "2", "text": "bye", "label": "neg"}),
    ]


def test_tsv_rows_are_split_on_tabs_only():
    results = read_tsv(b"text\tlabel\nhello, world\tpos\n")

    assert summary(results) == [("record", "f.tsv:2", {"text": "hello, world", "label": "pos"})]


def test_csv_quoted_field_keeps_embedded_delimiters_and_quotes():
    results = read_csv(b'text,label\n"a, b, ""c""",pos\n')

    assert summary(results) == [("record", "f.csv:2", {"text": 'a, b, "c"', "label": "pos"})]


def test_csv_quoted_field_with_embedded_newlines_is_sourced_at_its_first_line():
    data = b'id,text,label\n1,"line one\nline two\nline three",pos\n2,next,neg\n'

    results = read_csv(data)

    assert summary(results) == [
        ("record", "f.csv:2", {"id": "1", "text": "line one\nline two\nline three", "label": "pos"}),
        ("record", "f.csv:5", {"id": "2", "text": "next", "label": "neg"}),
    ]


def test_tsv_quoted_field_with_embedded_newline_and_tab_is_one_record():
    results = read_tsv(b'text\tlabel\n"a\tb\nc"\tpos\nd\tneg\n')

    assert summary(results) == [
        ("record", "f.tsv:2", {"text": "a\tb\nc", "label": "pos"}),
        ("record", "f.tsv:4", {"text": "d", "label": "neg"}),
    ]


def test_csv_with_crlf_line_endings_reads_the_same_as_with_lf():
    results = read_csv(b'text,label\r\nhello,pos\r\n"two\r\nlines",neg\r\nlast,pos\r\n')

    assert summary(results) == [
        ("record", "f.csv:2", {"text": "hello", "label": "pos"}),
        ("record", "f.csv:3", {"text": "two\r\nlines", "label": "neg"}),
        ("record", "f.csv:5", {"text": "last", "label": "pos"}),
    ]


def test_csv_byte_order_mark_is_not_part_of_the_first_column_name():
    results = read_csv(b"\xef\xbb\xbftext,label\nhello,pos\n")

    assert summary(results) == [("record", "f.csv:2", {"text": "hello", "label": "pos"})]


def test_csv_blank_lines_are_skipped_and_do_not_shift_line_numbers():
    results = read_csv(b"text,label\n\nhello,pos\n\n\nbye,neg\n")

    assert summary(results) == [
        ("record", "f.csv:3", {"text": "hello", "label": "pos"}),
        ("record", "f.csv:6", {"text": "bye", "label": "neg"}),
    ]


def test_csv_row_with_wrong_field_count_is_rejected_with_its_line():
    results = read_csv(b"text,label\nhello,pos\nonly-one-field\ntoo,many,fields\nbye,neg\n")

    assert summary(results) == [
        ("record", "f.csv:2", {"text": "hello", "label": "pos"}),
        ("rejected", "f.csv:3", rejections.UNPARSABLE_RECORD),
        ("rejected", "f.csv:4", rejections.UNPARSABLE_RECORD),
        ("record", "f.csv:5", {"text": "bye", "label": "neg"}),
    ]
    rejection = results[1]
    assert re.search(r"expected 2\b.*found 1\b", rejection.detail)
    assert rejection.record == "only-one-field"


def test_csv_fields_longer_than_the_csv_modules_default_limit_are_read():
    long_text = "word " * 40_000  # 200 KB, over the csv module's default 128 KiB field limit

    results = read_csv(f'text,label\n"{long_text}",pos\n'.encode())

    assert summary(results) == [("record", "f.csv:2", {"text": long_text, "label": "pos"})]


def test_csv_parser_error_is_rejected_with_its_line_and_reading_continues(monkeypatch):
    # Provoke the csv module's own error (a field over its size limit) with a small limit.
    set_limit = csv.field_size_limit
    original_limit = set_limit()
    monkeypatch.setattr(formats.csv, "field_size_limit", lambda *_: set_limit(1000))
    try:
        results = read_csv(b'text,label\n"a\n' + b"x" * 2000 + b'",pos\nok,neg\n')
    finally:
        monkeypatch.undo()
        set_limit(original_limit)

    assert summary(results) == [
        ("rejected", "f.csv:2", rejections.UNPARSABLE_RECORD),
        ("record", "f.csv:4", {"text": "ok", "label": "neg"}),
    ]
    assert results[0].detail.startswith("CSV error")


def test_csv_wrong_field_count_after_a_multiline_record_names_the_right_line():
    results = read_csv(b'text,label\n"a\nb",pos\nbroken\n')

    assert summary(results)[1] == ("rejected", "f.csv:4", rejections.UNPARSABLE_RECORD)


def test_csv_without_a_header_row_is_an_unreadable_file():
    results = read_csv(b"")

    assert summary(results) == [("rejected", "f.csv", rejections.UNREADABLE_FILE)]


def test_csv_with_only_a_header_yields_nothing():
    assert read_csv(b"text,label\n") == []


def test_csv_last_row_without_a_trailing_newline_is_read():
    assert summary(read_csv(b"text,label\nhello,pos")) == [("record", "f.csv:2", {"text": "hello", "label": "pos"})]


def test_csv_invalid_utf8_is_kept_in_the_record_not_rejected():
    results = read_csv(b"text,label\ncaf\xe9,pos\n")

    assert len(results) == 1
    record = results[0]
    assert isinstance(record, RawRecord)
    assert record.fields["text"] == b"caf\xe9".decode("utf-8", "surrogateescape")
    assert not formats.utf8_codec_ok(record.fields["text"])
    assert record.fields["label"] == "pos"


def test_gzipped_csv_reads_like_plain_csv():
    data = b'text,label\n"a\nb",pos\nc,neg\n'

    results = list(formats.read_delimited(gzipped(data), "f.csv.gz", ","))

    assert summary(results) == [
        ("record", "f.csv.gz:2", {"text": "a\nb", "label": "pos"}),
        ("record", "f.csv.gz:4", {"text": "c", "label": "neg"}),
    ]


# --- JSON Lines ------------------------------------------------------------------------------


def test_jsonl_objects_become_records_with_their_line_as_source():
    results = read_jsonl(b'{"text": "hello", "label": "pos", "n": 3}\n{"text": "bye", "label": ["a", "b"]}\n')

    assert summary(results) == [
        ("record", "f.jsonl:1", {"text": "hello", "label": "pos", "n": 3}),
        ("record", "f.jsonl:2", {"text": "bye", "label": ["a", "b"]}),
    ]


def test_jsonl_blank_lines_are_skipped_and_counted_in_line_numbers():
    results = read_jsonl(b'\n{"text": "a"}\n   \n\r\n{"text": "b"}\n')

    assert summary(results) == [
        ("record", "f.jsonl:2", {"text": "a"}),
        ("record", "f.jsonl:5", {"text": "b"}),
    ]


def test_jsonl_broken_line_is_rejected_with_its_line_and_reading_continues():
    results = read_jsonl(b'{"text": "a"}\n{"text": "unterminated\n{"text": "c"}\n')

    assert summary(results) == [
        ("record", "f.jsonl:1", {"text": "a"}),
        ("rejected", "f.jsonl:2", rejections.UNPARSABLE_RECORD),
        ("record", "f.jsonl:3", {"text": "c"}),
    ]
    assert results[1].detail.startswith("invalid JSON")
    assert '"unterminated' in results[1].record


@pytest.mark.parametrize("line, found", [
    (b"[1, 2]", "list"),
    (b'"just a string"', "str"),
    (b"42", "int"),
    (b"null", "NoneType"),
])
def test_jsonl_line_that_is_not_an_object_is_rejected(line, found):
    results = read_jsonl(line + b'\n{"text": "ok"}\n')

    assert summary(results) == [
        ("rejected", "f.jsonl:1", rejections.UNPARSABLE_RECORD),
        ("record", "f.jsonl:2", {"text": "ok"}),
    ]
    assert found in results[0].detail


def test_jsonl_deeply_nested_line_is_rejected_not_crashing_the_reader():
    results = read_jsonl(b"[" * 200_000 + b"\n" + b'{"text": "ok"}\n')

    assert summary(results) == [
        ("rejected", "f.jsonl:1", rejections.UNPARSABLE_RECORD),
        ("record", "f.jsonl:2", {"text": "ok"}),
    ]
    assert len(results[0].record) <= rejections.RECORD_EXCERPT_CHARS


def test_jsonl_invalid_utf8_is_kept_in_the_record_not_rejected():
    results = read_jsonl(b'{"text": "caf\xe9", "label": "pos"}\n')

    assert len(results) == 1
    assert isinstance(results[0], RawRecord)
    assert results[0].fields["text"] == b"caf\xe9".decode("utf-8", "surrogateescape")


def test_jsonl_byte_order_mark_on_the_first_line_is_ignored():
    assert summary(read_jsonl(b'\xef\xbb\xbf{"text": "a"}\n')) == [("record", "f.jsonl:1", {"text": "a"})]


def test_gzipped_jsonl_reads_like_plain_jsonl():
    results = list(formats.read_jsonl(gzipped(b'{"text": "a"}\nnot json\n'), "f.jsonl.gz"))

    assert summary(results) == [
        ("record", "f.jsonl.gz:1", {"text": "a"}),
        ("rejected", "f.jsonl.gz:2", rejections.UNPARSABLE_RECORD),
    ]


# --- Parquet ---------------------------------------------------------------------------------


def parquet_bytes(columns: dict) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def test_parquet_rows_become_records_sourced_by_row_index():
    data = parquet_bytes({"text": ["hello", "bye", None], "label": ["pos", "neg", "pos"], "n": [1, 2, 3]})

    results = list(formats.read_parquet(io.BytesIO(data), "p.parquet"))

    assert summary(results) == [
        ("record", "p.parquet#0", {"text": "hello", "label": "pos", "n": 1}),
        ("record", "p.parquet#1", {"text": "bye", "label": "neg", "n": 2}),
        ("record", "p.parquet#2", {"text": None, "label": "pos", "n": 3}),
    ]


def test_parquet_list_column_becomes_a_python_list():
    data = parquet_bytes({"text": ["a"], "labels": [["x", "y"]]})

    (record,) = formats.read_parquet(io.BytesIO(data), "p.parquet")

    assert record.fields["labels"] == ["x", "y"]


@pytest.mark.parametrize("damage", ["not_parquet", "truncated"])
def test_corrupt_parquet_stream_is_an_unreadable_file(damage):
    good = parquet_bytes({"text": ["hello"], "label": ["pos"]})
    data = b"this is not a parquet file" if damage == "not_parquet" else good[: len(good) // 2]

    results = list(formats.read_parquet(io.BytesIO(data), "p.parquet"))

    assert summary(results) == [("rejected", "p.parquet", rejections.UNREADABLE_FILE)]


# --- TFRecord --------------------------------------------------------------------------------


def example_bytes(**features) -> bytes:
    import tensorflow as tf

    feature = {}
    for name, values in features.items():
        if values and isinstance(values[0], bytes):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        elif values and isinstance(values[0], float):
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecord(path, records) -> str:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def read_tfrecord_file(path):
    with open(path, "rb") as f:
        return list(formats.read_tfrecord(f, path))


def good_examples():
    return [example_bytes(text=[b"hello"], label=[b"pos"]), example_bytes(text=[b"bye"], label=[b"neg"])]


def framed_size(record: bytes) -> int:
    """Bytes one record takes in a TFRecord file: length, its crc, the data, the data's crc."""
    return 8 + 4 + len(record) + 4


def test_tfrecord_single_values_become_scalars_and_multiple_values_lists(tmp_path):
    path = write_tfrecord(tmp_path / "f.tfrecord", [
        example_bytes(text=[b"hello"], labels=[b"a", b"b"], count=[3], scores=[0.5, 0.25], empty=[]),
    ])

    (record,) = read_tfrecord_file(path)

    assert isinstance(record, RawRecord)
    assert record.source == f"{path}#0"
    assert record.fields["text"] == b"hello"
    assert record.fields["labels"] == [b"a", b"b"]
    assert record.fields["count"] == 3
    assert record.fields["scores"] == [0.5, 0.25]
    assert record.fields["empty"] is None


def test_tfrecord_records_are_sourced_by_index(tmp_path):
    path = write_tfrecord(tmp_path / "f.tfrecord", good_examples())

    results = read_tfrecord_file(path)

    assert summary(results) == [
        ("record", f"{path}#0", {"text": b"hello", "label": b"pos"}),
        ("record", f"{path}#1", {"text": b"bye", "label": b"neg"}),
    ]


def flip_byte(path, offset_from_end):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[-offset_from_end] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


def keep_bytes_of_last_record(path, last_record, kept):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) - framed_size(last_record) + kept])


@pytest.mark.parametrize("damage", [
    pytest.param(lambda p, last: flip_byte(p, 5), id="flipped_data_byte"),  # last data byte, before its crc
    pytest.param(lambda p, last: flip_byte(p, framed_size(last) - 1), id="flipped_length_byte"),
    pytest.param(lambda p, last: keep_bytes_of_last_record(p, last, 5), id="truncated_inside_header"),
    pytest.param(lambda p, last: keep_bytes_of_last_record(p, last, 14), id="truncated_inside_data"),
    pytest.param(lambda p, last: keep_bytes_of_last_record(p, last, framed_size(last) - 2),
                 id="truncated_inside_data_crc"),
])
def test_damaged_tfrecord_yields_the_good_records_then_unreadable_file(tmp_path, damage):
    third = example_bytes(text=[b"third"], label=[b"pos"])
    path = write_tfrecord(tmp_path / "f.tfrecord", [*good_examples(), third])
    damage(path, third)

    results = read_tfrecord_file(path)

    assert [r.fields["text"] for r in results[:2]] == [b"hello", b"bye"]
    assert len(results) == 3
    rejection = results[2]
    assert isinstance(rejection, Rejection)
    assert rejection.reason == rejections.UNREADABLE_FILE
    assert rejection.source.startswith(path)


def test_tfrecord_with_a_damaged_first_record_is_rejected_at_index_0(tmp_path):
    path = write_tfrecord(tmp_path / "f.tfrecord", good_examples()[:1])
    flip_byte(path, 5)

    assert summary(read_tfrecord_file(path)) == [("rejected", f"{path}#0", rejections.UNREADABLE_FILE)]


def test_damaged_tfrecord_rejection_names_the_damaged_records_index(tmp_path):
    third = example_bytes(text=[b"third"], label=[b"pos"])
    path = write_tfrecord(tmp_path / "f.tfrecord", [*good_examples(), third])
    flip_byte(path, 5)

    results = read_tfrecord_file(path)

    assert results[-1].source == f"{path}#2"


def test_tfrecord_record_that_is_not_a_tf_example_is_unparsable_and_reading_continues(tmp_path):
    path = write_tfrecord(tmp_path / "f.tfrecord", [good_examples()[0], b"\xff\xff", good_examples()[1]])

    results = read_tfrecord_file(path)

    assert summary(results) == [
        ("record", f"{path}#0", {"text": b"hello", "label": b"pos"}),
        ("rejected", f"{path}#1", rejections.UNPARSABLE_RECORD),
        ("record", f"{path}#2", {"text": b"bye", "label": b"neg"}),
    ]
    assert results[1].detail.startswith("not a tf.Example")


def test_empty_tfrecord_file_yields_nothing(tmp_path):
    path = write_tfrecord(tmp_path / "f.tfrecord", [])

    assert read_tfrecord_file(path) == []


# --- text dirs -------------------------------------------------------------------------------


def test_text_file_is_one_record_labelled_by_its_parent_folder():
    results = list(formats.read_text_file(io.BytesIO(b"Hello\nworld\xe9"), "corpus/pos/doc1.txt", "body", "topic"))

    assert summary(results) == [
        ("record", "corpus/pos/doc1.txt",
         {"body": b"Hello\nworld\xe9", "topic": "pos", formats.TEXT_FILE_FIELD: "corpus/pos/doc1.txt"}),
    ]


def test_text_file_on_a_remote_filesystem_takes_its_label_from_the_parent_folder():
    (record,) = formats.read_text_file(io.BytesIO(b"x"), "gs://bucket/corpus/neg/a.txt", "text", "label")

    assert record.fields["label"] == "neg"
    assert record.fields["path"] == "gs://bucket/corpus/neg/a.txt"


def test_text_file_without_a_parent_folder_has_no_label():
    (record,) = formats.read_text_file(io.BytesIO(b"x"), "a.txt", "text", "label")

    assert record.fields["label"] is None


@pytest.mark.parametrize("input_format, data, path", [
    ("csv", b"text,label\na,b\n", "x.csv"),
    ("tsv", b"text\tlabel\na\tb\n", "x.tsv"),
    ("jsonl", b'{"text": "a", "label": "b"}\n', "x.jsonl"),
    ("auto", b'{"text": "a", "label": "b"}\n', "x.ndjson"),
    ("auto", b"text\tlabel\na\tb\n", "x.tab"),
])
def test_read_records_dispatches_to_the_reader_of_the_format(input_format, data, path):
    (record,) = formats.read_records(io.BytesIO(data), path, input_format, "text", "label")

    assert record.fields == {"text": "a", "label": "b"}


def test_read_records_with_auto_format_reads_a_text_dirs_file():
    (record,) = formats.read_records(io.BytesIO(b"doc"), "corpus/pos/1.txt", "auto", "text", "label")

    assert record.fields["text"] == b"doc" and record.fields["label"] == "pos"


def test_read_records_refuses_an_unknown_format():
    with pytest.raises(UserError):
        formats.read_records(io.BytesIO(b""), "x.csv", "xml", "text", "label")


# --- format_for_path -------------------------------------------------------------------------


@pytest.mark.parametrize("path, expected", [
    ("data/a.csv", "csv"),
    ("data/a.tsv", "tsv"),
    ("data/a.tab", "tsv"),
    ("data/a.jsonl", "jsonl"),
    ("data/a.ndjson", "jsonl"),
    ("data/a.json", "jsonl"),
    ("data/a.parquet", "parquet"),
    ("data/a.pq", "parquet"),
    ("data/a.tfrecord", "tfrecord"),
    ("data/a.tfrecords", "tfrecord"),
    ("corpus/pos/a.txt", "textdirs"),
    ("corpus/pos/README", "textdirs"),
    ("corpus/", "textdirs"),
    ("data/A.CSV", "csv"),
    ("gs://bucket/dir.v1/a.jsonl", "jsonl"),
])
def test_format_for_path_by_extension(path, expected):
    assert formats.format_for_path(path) == expected


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".zst", ".deflate"])
@pytest.mark.parametrize("name, expected", [("a.csv", "csv"), ("a.jsonl", "jsonl"), ("a.tfrecord", "tfrecord"),
                                            ("a.parquet", "parquet"), ("a.tsv", "tsv"), ("a.txt", "textdirs")])
def test_format_for_path_ignores_compression_suffixes(name, expected, suffix):
    assert formats.format_for_path(f"data/{name}{suffix}") == expected


@pytest.mark.parametrize("path", ["data/a.xml", "data/a.xml.gz", "data/a.tar.gz", "data/a.xlsx"])
def test_format_for_path_refuses_an_unknown_extension_naming_the_file(path):
    with pytest.raises(UserError, match="--format") as raised:
        formats.format_for_path(path)

    assert path in str(raised.value)


# --- excerpt ---------------------------------------------------------------------------------


def test_excerpt_truncates_long_text_to_the_limit():
    long_text = "x" * (rejections.RECORD_EXCERPT_CHARS * 3)

    assert formats.excerpt(long_text) == "x" * rejections.RECORD_EXCERPT_CHARS


def test_excerpt_keeps_short_text_unchanged():
    assert formats.excerpt("short, and ünïcode") == "short, and ünïcode"


@pytest.mark.parametrize("value", [
    b"caf\xe9 \xff\xfe",
    b"caf\xe9".decode("utf-8", "surrogateescape"),
    "\ud800 lone high surrogate",
    {"text": b"\xff", "label": 3},
    None,
    b"\xff" * (rejections.RECORD_EXCERPT_CHARS * 2),
])
def test_excerpt_never_raises_and_is_valid_utf8_json(value):
    text = formats.excerpt(value)

    assert isinstance(text, str)
    assert len(text) <= rejections.RECORD_EXCERPT_CHARS
    text.encode("utf-8")  # no lone surrogates left
    assert json.loads(json.dumps(text, ensure_ascii=False)) == text


def test_excerpt_shows_undecodable_bytes_as_escapes():
    assert formats.excerpt(b"caf\xe9") == "caf\\xe9"
    assert formats.excerpt(b"caf\xe9".decode("utf-8", "surrogateescape")) == "caf\\udce9"


def test_rejection_with_an_excerpt_of_bad_bytes_serializes_to_json():
    rejection = Rejection(rejections.UNPARSABLE_RECORD, "f.jsonl:1", "invalid JSON", formats.excerpt(b"{\xff"))

    assert json.loads(rejection.to_json()) == {
        "reason": "unparsable_record", "source": "f.jsonl:1", "detail": "invalid JSON", "record": "{\\xff"}
