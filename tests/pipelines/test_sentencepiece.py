"""The sentencepiece tokenizer's parts, without a pipeline run: ALBERT's text preparation and the
in-graph tokenization against the reference fixture, the framing, the model checks, learning a
model from word counts, and reading a pretrained-encoder directory.

tests/fixtures/albert/tokenizer_cases.json holds, for 236 strings, what the reference produces
(see its generator, make_albert_reference.py): `normalized` (transformers' AlbertTokenizer
.preprocess_text), `sp_ids` (the `sentencepiece` package on that text) and `slow_ids` (the slow
AlbertTokenizer, which differs from plain SentencePiece where it flags `reason`).
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os

import pytest
import sentencepiece
import tensorflow as tf

from pipelines import albert_text, preprocess
from pipelines.preprocessing_fn import frame_cls_sep, sentencepiece_pieces
from pipelines.pretrained_dir import apply_to_settings, read_pretrained_tokenizer
from pipelines.sentencepiece_model import LEARNED_LAYOUT, describe, train_model
from schemas.config import ConfigError, PreprocessConfig
from schemas.errors import UserError
from tests.conftest import make_documents, write_corpus
from tests.pipelines.albert_fixtures import FIXTURES, SPIECE, write_pretrained_dir

CASES = json.loads((FIXTURES / "tokenizer_cases.json").read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="module")
def model():
    return describe(SPIECE.read_bytes(), str(SPIECE))


@pytest.fixture(scope="module")
def in_graph(model) -> tuple[list[str], list[list[int]]]:
    """(normalized texts, piece ids) of every fixture case, from the in-graph functions."""
    normalized = albert_text.normalize(tf.constant([case["text"] for case in CASES]), lowercase=True)
    ids = sentencepiece_pieces(normalized, model.model).to_list()
    return [text.decode("utf-8") for text in normalized.numpy()], ids


# --- Parity with the reference tokenizer --------------------------------------------------------


def test_in_graph_normalization_equals_the_reference_preprocess_text_on_every_case(in_graph):
    normalized, _ = in_graph
    mismatches = [(case["text"], case["normalized"], got) for case, got in zip(CASES, normalized)
                  if got != case["normalized"]]
    assert len(CASES) == 236
    assert mismatches == []


def test_in_graph_ids_equal_sentencepiece_on_the_reference_normalized_text_on_every_case(in_graph):
    _, ids = in_graph
    mismatches = [(case["text"], case["sp_ids"], got) for case, got in zip(CASES, ids) if got != case["sp_ids"]]
    assert mismatches == []


def test_in_graph_ids_differ_from_the_slow_reference_exactly_where_the_fixture_says_why(in_graph):
    _, ids = in_graph
    differing = collections.Counter(case.get("reason") for case, got in zip(CASES, ids) if got != case["slow_ids"])
    flagged = collections.Counter(case["reason"] for case in CASES if case["differs"])
    assert differing == flagged == {"digit_comma": 12, "special_token_literal": 6}


def test_a_cased_model_keeps_letter_case_but_still_drops_accents_and_rewrites_quotes():
    normalized = albert_text.normalize(tf.constant(["  Café\u00a0``Zoë''\t "]), lowercase=False)
    assert normalized.numpy().tolist() == [b'Cafe "Zoe"']


def test_lower_casing_keeps_nul_characters_and_what_follows_them():
    normalized = albert_text.normalize(tf.constant(["A\x00B\x00", "\x00"]), lowercase=True)
    assert normalized.numpy().tolist() == [b"a\x00b\x00", b"\x00"]


# --- Framing ------------------------------------------------------------------------------------


def test_framing_puts_cls_first_sep_after_the_kept_pieces_then_padding(model):
    pieces = tf.ragged.constant([[20, 21, 22], [20, 21, 22, 23, 24, 25, 26], [30]], dtype=tf.int64)
    token_ids, lengths = frame_cls_sep(pieces, model, max_seq_length=6)
    assert token_ids.numpy().tolist() == [[2, 20, 21, 22, 3, 0], [2, 20, 21, 22, 23, 3], [2, 30, 3, 0, 0, 0]]
    assert lengths.numpy().tolist() == [5, 9, 3]  # [CLS] + every piece + [SEP], before the cut


def test_a_text_that_prepares_to_nothing_gets_one_unk_piece(model):
    normalized = albert_text.normalize(tf.constant(["\u0301\u0308", "ok"]), lowercase=True)
    token_ids, lengths = frame_cls_sep(sentencepiece_pieces(normalized, model.model), model, max_seq_length=5)
    assert token_ids.numpy().tolist()[0] == [2, model.unk_id, 3, 0, 0]
    assert lengths.numpy().tolist()[0] == 3


# --- Model checks -------------------------------------------------------------------------------


def trained(**overrides) -> bytes:
    """A tiny SentencePiece model; `overrides` change the trainer's flags."""
    flags = dict(model_type="unigram", vocab_size=30, hard_vocab_limit=False, pad_id=0, unk_id=1, bos_id=-1,
                 eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    flags.update(overrides)
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(["a tiny corpus", "of tiny words"] * 5),
                                             model_writer=model, **flags)
    return model.getvalue()


def test_the_fixture_model_has_albert_special_pieces(model):
    assert model.special_tokens == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    assert model.vocab_size == 200
    assert model.sha256 == hashlib.sha256(SPIECE.read_bytes()).hexdigest()


@pytest.mark.parametrize("flags, named", [
    (dict(pad_id=-1, unk_id=0), "<pad>"),  # no padding piece
    (dict(pad_id=5), "<pad>"),  # padding not id 0
    (dict(control_symbols=["[SEP]", "[MASK]"]), "[CLS]"),
    (dict(control_symbols=["[CLS]"]), "[SEP]"),
])
def test_a_model_without_albert_padding_or_framing_pieces_is_refused_naming_the_piece(flags, named):
    with pytest.raises(UserError, match=r"m\.model cannot be used: .*" + named.replace("[", r"\[")):
        describe(trained(**flags), "m.model")


def test_bytes_that_are_not_a_sentencepiece_model_are_refused_in_one_line():
    with pytest.raises(UserError) as raised:
        describe(b"certainly not a model", "notes.txt")
    assert str(raised.value) == "notes.txt is not a SentencePiece model (it cannot be parsed as one)."


def test_a_learned_model_has_the_albert_layout_and_at_most_the_asked_vocabulary():
    counts = {b"movie": 9, b"film": 7, b"great": 5, b"bad": 4, b"story": 3, b"actors": 2}
    learned = describe(train_model(counts, vocab_size=40), "learned")
    assert learned.special_tokens == LEARNED_LAYOUT
    assert 5 < learned.vocab_size <= 40
    processor = sentencepiece.SentencePieceProcessor(model_proto=learned.model)
    ids = processor.encode("great actors")
    assert processor.decode(ids) == "great actors" and learned.unk_id not in ids


def test_learning_does_not_depend_on_the_order_beam_merged_the_counts():
    counts = [(b"movie", 9), (b"film", 7), (b"great", 5), (b"bad", 4), (b"fun", 4)]
    assert train_model(dict(counts), 30) == train_model(dict(reversed(counts)), 30)


def test_a_vocabulary_too_small_for_the_corpus_characters_is_a_user_error_naming_what_it_needs():
    counts = {letter.encode() * 3: 5 for letter in "abcdefghijklmnopqrstuvwxyz"}
    with pytest.raises(UserError, match="vocab_size 20 is too small .* need 32"):
        train_model(counts, vocab_size=20)  # 26 letters, the word boundary ▁ and 5 special pieces


# --- The pretrained-encoder directory -------------------------------------------------------------


def test_a_pretrained_directory_gives_its_model_case_and_longest_sequence(tmp_path):
    tokenizer = read_pretrained_tokenizer(write_pretrained_dir(tmp_path / "enc", lowercase=False))
    assert tokenizer.model.model == SPIECE.read_bytes()
    assert (tokenizer.lowercase, tokenizer.max_sequence_length) == (False, 64)


@pytest.mark.parametrize("kwargs, message", [
    (dict(format_version=99), "written by a newer release (format_version 99); this release reads format_version 1"),
    (dict(with_model=False), "has no SentencePiece model spiece.model"),
    (dict(sha256="0" * 64), "is not the SentencePiece model"),
    (dict(vocabulary_size=300), "has 200 pieces but"),
    (dict(max_sequence_length="64"), "backbone.max_sequence_length must be an integer"),
])
def test_a_broken_or_newer_pretrained_directory_is_refused_naming_the_problem(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_pretrained_tokenizer(write_pretrained_dir(tmp_path / "enc", **kwargs))


def test_a_directory_without_encoder_json_is_not_a_pretrained_directory(tmp_path):
    with pytest.raises(UserError, match="is not a pretrained-encoder directory: it has no encoder.json"):
        read_pretrained_tokenizer(str(tmp_path))


def test_the_default_sequence_length_is_lowered_to_the_encoders_and_its_case_is_taken(tmp_path):
    tokenizer = read_pretrained_tokenizer(write_pretrained_dir(tmp_path / "enc", lowercase=False))
    settings = apply_to_settings(PreprocessConfig(pretrained="enc"), tokenizer, explicit=())
    assert (settings.max_seq_length, settings.lowercase, settings.tokenizer) == (64, False, "sentencepiece")
    kept = apply_to_settings(PreprocessConfig(pretrained="enc", max_seq_length=32), tokenizer, {"max_seq_length"})
    assert kept.max_seq_length == 32


def test_an_explicit_sequence_length_above_the_encoders_is_an_error_naming_both(tmp_path):
    tokenizer = read_pretrained_tokenizer(write_pretrained_dir(tmp_path / "enc"))
    with pytest.raises(ConfigError, match=r"max_seq_length 128 .* \(max_sequence_length 64\)"):
        apply_to_settings(PreprocessConfig(pretrained="enc", max_seq_length=128), tokenizer, {"max_seq_length"})


def test_an_explicit_letter_case_contradicting_the_encoder_is_an_error(tmp_path):
    tokenizer = read_pretrained_tokenizer(write_pretrained_dir(tmp_path / "enc", lowercase=True))
    with pytest.raises(ConfigError, match=r"lowercase false contradicts .*\(tokenizer.lowercase true\)"):
        apply_to_settings(PreprocessConfig(pretrained="enc", lowercase=False), tokenizer, {"lowercase"})


# --- Configuration ----------------------------------------------------------------------------


def test_a_model_file_or_a_pretrained_directory_implies_the_sentencepiece_tokenizer():
    assert PreprocessConfig(sentencepiece_model="m.model").tokenizer == "sentencepiece"
    assert PreprocessConfig(pretrained="enc").tokenizer == "sentencepiece"
    assert PreprocessConfig(tokenizer="sentencepiece").sentencepiece_model is None  # learned


@pytest.mark.parametrize("kwargs, message", [
    (dict(tokenizer="wordpiece", pretrained="enc"), "needs preprocess.tokenizer sentencepiece"),
    (dict(sentencepiece_model="m.model", pretrained="enc"), "cannot be combined"),
    (dict(tokenizer="sentencepiece", max_seq_length=2), "at least 3"),
])
def test_contradictory_sentencepiece_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PreprocessConfig(**kwargs)


# --- The command refuses before any pipeline runs --------------------------------------------------


def error_line(capsys, argv) -> str:
    with pytest.raises(SystemExit) as raised:
        preprocess.main([str(a) for a in argv])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    return line


@pytest.fixture
def corpus(tmp_path) -> str:
    return write_corpus(make_documents(6), tmp_path / "raw", "jsonl")


def test_a_file_that_is_not_a_sentencepiece_model_is_refused_and_nothing_is_written(tmp_path, capsys, corpus):
    line = error_line(capsys, ["--input", corpus, "--output-dir", tmp_path / "out", "--sentencepiece-model", corpus])
    assert line == f"error: {corpus} is not a SentencePiece model (it cannot be parsed as one)."
    assert sorted(os.listdir(tmp_path)) == ["raw"]


def test_a_missing_sentencepiece_model_is_refused(tmp_path, capsys, corpus):
    line = error_line(capsys, ["--input", corpus, "--output-dir", tmp_path / "out",
                               "--sentencepiece-model", tmp_path / "nope.model"])
    assert "SentencePiece model not found" in line and "nope.model" in line


def test_the_command_refuses_a_sequence_length_the_pretrained_encoder_cannot_take(tmp_path, capsys, corpus):
    directory = write_pretrained_dir(tmp_path / "enc", max_sequence_length=64)
    line = error_line(capsys, ["--input", corpus, "--output-dir", tmp_path / "out", "--pretrained", directory,
                               "--max-seq-length", "512"])
    assert "512" in line and "64" in line
    assert not (tmp_path / "out").exists()


def test_the_command_refuses_an_explicit_word_tokenizer_with_a_pretrained_directory(tmp_path, capsys, corpus):
    directory = write_pretrained_dir(tmp_path / "enc")
    line = error_line(capsys, ["--input", corpus, "--output-dir", tmp_path / "out", "--pretrained", directory,
                               "--tokenizer", "word"])
    assert "preprocess.pretrained needs preprocess.tokenizer sentencepiece" in line


def test_the_command_refuses_a_newer_pretrained_directory(tmp_path, capsys, corpus):
    directory = write_pretrained_dir(tmp_path / "enc", format_version=99)
    line = error_line(capsys, ["--input", corpus, "--output-dir", tmp_path / "out", "--pretrained", directory])
    assert "format_version 99" in line


def test_a_job_file_sequence_length_counts_as_explicit(tmp_path, capsys, corpus):
    directory = write_pretrained_dir(tmp_path / "enc", max_sequence_length=64)
    job = tmp_path / "job.yaml"
    job.write_text("preprocess:\n  max_seq_length: 100\n")
    line = error_line(capsys, ["--config", job, "--input", corpus, "--output-dir", tmp_path / "out",
                               "--pretrained", directory])
    assert "100" in line and "64" in line

