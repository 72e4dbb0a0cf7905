"""Validation of raw records: a Document, or a Rejection whose reason says what is wrong."""

import pytest

from pipelines.documents import Document, text_fingerprint, to_document
from pipelines.formats import RawRecord, Rejection
from schemas import rejections
from schemas.config import CorpusConfig

SINGLE = CorpusConfig()
WITH_ID = CorpusConfig(id_field="doc_id")
MULTI = CorpusConfig(multi_label=True)

SURROGATE_TEXT = b"caf\xe9".decode("utf-8", "surrogateescape")  # how readers keep bytes that are not UTF-8


def record(source="f.jsonl:7", **fields):
    return RawRecord(fields, source)


def validate(config=SINGLE, require_label=True, **fields):
    return to_document(record(**fields), config, require_label=require_label)


def rejection_reason(result):
    assert isinstance(result, Rejection), f"expected a Rejection, got {result!r}"
    return result.reason


# --- accepted documents ----------------------------------------------------------------------


def test_good_record_becomes_a_document_with_id_from_the_id_field():
    result = validate(WITH_ID, text="Hello world", label="pos", doc_id="d-1")

    assert result == Document(id="d-1", text="Hello world", labels=("pos",), source="f.jsonl:7")


def test_integer_id_becomes_a_string():
    assert validate(WITH_ID, text="t", label="pos", doc_id=42).id == "42"


def test_without_an_id_field_the_id_is_the_text_fingerprint():
    result = validate(text="Hello world", label="pos", doc_id="ignored")

    assert result.id == text_fingerprint("Hello world")


def test_text_fingerprint_is_stable_and_depends_only_on_the_text():
    first = validate(text="Hello world", label="pos", source="a.csv:2")
    second = validate(text="Hello world", label="neg", source="b.csv:9")
    other = validate(text="Hello world!", label="pos")

    assert first.id == second.id
    assert first.id != other.id
    # Pinned: ids must not change between runs or releases (they key duplicates and outputs).
    assert text_fingerprint("Hello world") == "613922c30f99f8660315bc3d"


def test_text_is_kept_exactly_as_given():
    assert validate(text="  Mixed Case\ttext\n", label="pos").text == "  Mixed Case\ttext\n"


def test_valid_utf8_bytes_are_decoded():
    result = validate(text="café".encode("utf-8"), label=b"pos")

    assert result.text == "café"
    assert result.labels == ("pos",)


def test_integer_label_is_accepted_as_its_decimal_string():
    assert validate(text="t", label=3).labels == ("3",)
    assert validate(text="t", label=-7).labels == ("-7",)


@pytest.mark.parametrize("label", [True, False, 7.0, 2.5, ["7"], {"name": "7"}])
def test_labels_that_are_not_strings_or_integers_are_wrong_type(label):
    # The one rule for numbers: an integer is its decimal string; booleans, floats, lists and
    # mappings are refused, so `true` never silently becomes a label "True".
    assert rejection_reason(validate(text="t", label=label)) == rejections.WRONG_TYPE


def test_label_is_stripped_of_surrounding_whitespace():
    assert validate(text="t", label="  pos \n").labels == ("pos",)


def test_single_label_mode_does_not_split_on_the_separator():
    assert validate(text="t", label="a,b").labels == ("a,b",)


def test_custom_text_and_label_fields_are_used():
    config = CorpusConfig(text_field="body", label_field="topic")

    result = validate(config, body="the text", topic="sports", text="not this", label="nor this")

    assert (result.text, result.labels) == ("the text", ("sports",))


# --- rejections: the text --------------------------------------------------------------------


@pytest.mark.parametrize("fields, reason", [
    pytest.param({"label": "pos"}, rejections.MISSING_TEXT, id="text_field_missing"),
    pytest.param({"text": None, "label": "pos"}, rejections.MISSING_TEXT, id="text_none"),
    pytest.param({"text": "", "label": "pos"}, rejections.EMPTY_TEXT, id="text_empty"),
    pytest.param({"text": "   \n\t", "label": "pos"}, rejections.EMPTY_TEXT, id="text_whitespace_only"),
    pytest.param({"text": b"  ", "label": "pos"}, rejections.EMPTY_TEXT, id="text_whitespace_bytes"),
    pytest.param({"text": "\u200b", "label": "pos"}, rejections.EMPTY_TEXT, id="text_zero_width_space"),
    pytest.param({"text": "\u200e\u200f \u200b", "label": "pos"}, rejections.EMPTY_TEXT, id="text_direction_marks"),
    pytest.param({"text": "\ufeff\u2060\u00ad", "label": "pos"}, rejections.EMPTY_TEXT, id="text_bom_joiner_soft_hyphen"),
    pytest.param({"text": "\x00\x1f\u3000\u2028", "label": "pos"}, rejections.EMPTY_TEXT, id="text_controls_and_separators"),
    pytest.param({"text": "\ufe0f\u3164", "label": "pos"}, rejections.EMPTY_TEXT, id="text_default_ignorables"),
    pytest.param({"text": "<br />\u200b<BR>", "label": "pos"}, rejections.EMPTY_TEXT, id="text_only_line_break_tags"),
    pytest.param({"text": 12, "label": "pos"}, rejections.WRONG_TYPE, id="text_int"),
    pytest.param({"text": 1.5, "label": "pos"}, rejections.WRONG_TYPE, id="text_float"),
    pytest.param({"text": True, "label": "pos"}, rejections.WRONG_TYPE, id="text_bool"),
    pytest.param({"text": ["a", "b"], "label": "pos"}, rejections.WRONG_TYPE, id="text_list"),
    pytest.param({"text": {"a": 1}, "label": "pos"}, rejections.WRONG_TYPE, id="text_dict"),
    pytest.param({"text": b"caf\xe9", "label": "pos"}, rejections.INVALID_UTF8, id="text_bytes_not_utf8"),
    pytest.param({"text": SURROGATE_TEXT, "label": "pos"}, rejections.INVALID_UTF8, id="text_lone_surrogates"),
])
def test_bad_text_is_rejected_with_its_reason(fields, reason):
    assert rejection_reason(validate(**fields)) == reason


@pytest.mark.parametrize("text", ["a\u200b", "\u200e\u05e9\u05dc\u05d5\u05dd", "\u4e2d", "\U0001F600", "<br>x"])
def test_text_with_one_visible_character_among_invisible_ones_is_accepted(text):
    assert validate(text=text, label="pos").text == text


@pytest.mark.parametrize("require_label", [True, False], ids=["preprocessing", "scoring"])
def test_invisible_text_is_rejected_as_empty_by_both_stages(require_label):
    assert rejection_reason(validate(require_label=require_label, text="\u200b\u200e\u200f")) == rejections.EMPTY_TEXT


def test_text_problems_are_reported_before_label_problems():
    assert rejection_reason(validate(text="")) == rejections.EMPTY_TEXT


# --- rejections: the label -------------------------------------------------------------------


@pytest.mark.parametrize("fields, reason", [
    pytest.param({"text": "t"}, rejections.MISSING_LABEL, id="label_field_missing"),
    pytest.param({"text": "t", "label": None}, rejections.MISSING_LABEL, id="label_none"),
    pytest.param({"text": "t", "label": ""}, rejections.MISSING_LABEL, id="label_empty"),
    pytest.param({"text": "t", "label": "  "}, rejections.MISSING_LABEL, id="label_whitespace_only"),
    pytest.param({"text": "t", "label": ["a", "b"]}, rejections.WRONG_TYPE, id="label_list_in_single_label_mode"),
    pytest.param({"text": "t", "label": 2.5}, rejections.WRONG_TYPE, id="label_float"),
    pytest.param({"text": "t", "label": True}, rejections.WRONG_TYPE, id="label_bool"),
    pytest.param({"text": "t", "label": b"\xff"}, rejections.INVALID_UTF8, id="label_bytes_not_utf8"),
    pytest.param({"text": "t", "label": SURROGATE_TEXT}, rejections.INVALID_UTF8, id="label_lone_surrogates"),
])
def test_bad_label_is_rejected_with_its_reason(fields, reason):
    assert rejection_reason(validate(**fields)) == reason


# --- rejections: the id ----------------------------------------------------------------------


@pytest.mark.parametrize("fields, reason", [
    pytest.param({"text": "t", "label": "pos"}, rejections.MISSING_ID, id="id_field_missing"),
    pytest.param({"text": "t", "label": "pos", "doc_id": None}, rejections.MISSING_ID, id="id_none"),
    pytest.param({"text": "t", "label": "pos", "doc_id": ""}, rejections.MISSING_ID, id="id_empty"),
    pytest.param({"text": "t", "label": "pos", "doc_id": "  "}, rejections.MISSING_ID, id="id_whitespace_only"),
    pytest.param({"text": "t", "label": "pos", "doc_id": ["x"]}, rejections.WRONG_TYPE, id="id_list"),
])
def test_bad_id_is_rejected_when_an_id_field_is_configured(fields, reason):
    assert rejection_reason(validate(WITH_ID, **fields)) == reason


# --- what a rejection carries ----------------------------------------------------------------


def test_rejection_carries_the_records_source_detail_and_excerpt():
    result = validate(source="data/part-3.csv:41", text="", label="pos", extra=b"\xff")

    assert result.reason == rejections.EMPTY_TEXT
    assert result.source == "data/part-3.csv:41"
    assert "'text'" in result.detail
    assert "'label': 'pos'" in result.record
    assert "\\xff" in result.record  # undecodable bytes shown as an escape, not dropped


def test_rejection_detail_names_the_configured_field():
    result = validate(CorpusConfig(label_field="topic"), text="t")

    assert result.reason == rejections.MISSING_LABEL
    assert "'topic'" in result.detail


def test_rejection_of_text_with_lone_surrogates_serializes_to_json():
    import json

    result = validate(text=SURROGATE_TEXT, label="pos")

    assert json.loads(result.to_json())["reason"] == rejections.INVALID_UTF8


def test_rejection_excerpt_of_a_huge_record_is_truncated():
    result = validate(text="x" * 10_000, label=None)

    assert len(result.record) == rejections.RECORD_EXCERPT_CHARS


# --- multi-label -----------------------------------------------------------------------------


@pytest.mark.parametrize("label, expected", [
    pytest.param("a, b,a", ("a", "b"), id="separated_string_deduplicated_in_order"),
    pytest.param("b,a", ("b", "a"), id="order_kept"),
    pytest.param("solo", ("solo",), id="one_label"),
    pytest.param("a,,b, ", ("a", "b"), id="empty_parts_dropped"),
    pytest.param(["x", "y"], ("x", "y"), id="json_list"),
    pytest.param(("x", " y ", "x"), ("x", "y"), id="tuple_stripped_and_deduplicated"),
    pytest.param([b"x", 7], ("x", "7"), id="list_of_bytes_and_int"),
])
def test_multi_label_labels(label, expected):
    assert validate(MULTI, text="t", label=label).labels == expected


def test_multi_label_uses_the_configured_separator():
    config = CorpusConfig(multi_label=True, label_separator="|")

    assert validate(config, text="t", label="a,b|c").labels == ("a,b", "c")


@pytest.mark.parametrize("label, reason", [
    pytest.param([], rejections.MISSING_LABEL, id="empty_list"),
    pytest.param(" , ,", rejections.MISSING_LABEL, id="only_separators"),
    pytest.param(["", " "], rejections.MISSING_LABEL, id="list_of_blanks"),
    pytest.param(["a", 1.5], rejections.WRONG_TYPE, id="list_with_a_float"),
    pytest.param(["a", ["b"]], rejections.WRONG_TYPE, id="nested_list"),
])
def test_multi_label_bad_labels_are_rejected(label, reason):
    assert rejection_reason(validate(MULTI, text="t", label=label)) == reason


# --- unlabelled documents (require_label=False) ----------------------------------------------


@pytest.mark.parametrize("fields", [
    pytest.param({"text": "t"}, id="label_field_missing"),
    pytest.param({"text": "t", "label": None}, id="label_none"),
])
def test_without_required_label_a_record_without_label_is_a_document_with_no_labels(fields):
    result = validate(require_label=False, **fields)

    assert isinstance(result, Document)
    assert result.labels == ()


def test_without_required_label_a_given_label_is_still_read():
    assert validate(MULTI, require_label=False, text="t", label="a,b").labels == ("a", "b")


def test_without_required_label_the_text_is_still_validated():
    assert rejection_reason(validate(require_label=False, text="  ")) == rejections.EMPTY_TEXT

