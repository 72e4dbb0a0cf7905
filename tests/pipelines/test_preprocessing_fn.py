"""The tf.Transform `preprocessing_fn`, analyzed and applied by tf.Transform on a handful of documents.

Every test here shares one of three module-scoped tf.Transform runs (word, multi-label, wordpiece).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
from typing import Sequence

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipelines.preprocessing_fn import preprocessing_fn
from schemas import features
from schemas.config import PreprocessConfig

pytestmark = pytest.mark.slow

# --- Helpers -----------------------------------------------------------------------------------


def raw_metadata(multi_label: bool) -> tft.DatasetMetadata:
    label = tf.io.VarLenFeature(tf.string) if multi_label else tf.io.FixedLenFeature([], tf.string)
    return tft.DatasetMetadata.from_feature_spec(
        {features.TEXT: tf.io.FixedLenFeature([], tf.string), features.LABEL: label})


def _as_json_row(row: dict) -> str:
    # Ragged outputs arrive as `<name>$ragged_values`; keep the feature name only.
    return json.dumps({name.split("$")[0]: np.asarray(value).tolist() for name, value in row.items()}, sort_keys=True)


@dataclasses.dataclass
class TransformRun:
    """What one AnalyzeAndTransformDataset run produced: transform_fn/ and the transformed training rows."""

    output_dir: str
    rows: list[dict]
    multi_label: bool

    @functools.cached_property
    def output(self) -> tft.TFTransformOutput:
        return tft.TFTransformOutput(self.output_dir)

    def vocabulary(self, name: str = features.TOKEN_VOCABULARY) -> list[str]:
        return [token.decode("utf-8") for token in self.output.vocabulary_by_name(name)]

    def transform(self, texts: Sequence[str], labels: Sequence | None = None) -> list[dict]:
        """Applies the saved transform_fn to `texts` (and labels): one dict of Python values per text."""
        raw = {features.TEXT: tf.constant(list(texts))}
        if labels is not None:
            raw[features.LABEL] = (tf.ragged.constant(list(labels), dtype=tf.string).to_sparse() if self.multi_label
                                   else tf.constant(list(labels)))
        transformed = self.output.transform_raw_features(raw)
        columns = {name: value.to_list() if isinstance(value, tf.RaggedTensor) else value.numpy().tolist()
                   for name, value in transformed.items()}
        return [{name: column[i] for name, column in columns.items()} for i in range(len(texts))]

    def ids(self, text: str) -> list[int]:
        return self.transform([text])[0][features.TOKEN_IDS]


def analyze_and_transform(work_dir, documents: Sequence[tuple[str, object]], config: PreprocessConfig,
                          multi_label: bool = False) -> TransformRun:
    """Runs the module-level preprocessing_fn through tf.Transform over (text, label(s)) documents."""
    instances = [{features.TEXT: text, features.LABEL: label} for text, label in documents]
    output_dir = str(work_dir / "out")
    rows_path = str(work_dir / "rows.jsonl")
    with beam.Pipeline(runner=FnApiRunner()) as pipeline, tft_beam.Context(temp_dir=str(work_dir / "tmp")):
        raw = pipeline | beam.Create(instances)
        (transformed, _), transform_fn = (raw, raw_metadata(multi_label)) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(preprocessing_fn, config=config, multi_label=multi_label), output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
        _ = (transformed
             | "ToJson" >> beam.Map(_as_json_row)
             | "WriteRows" >> beam.io.WriteToText(rows_path, shard_name_template=""))
    with open(rows_path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return TransformRun(output_dir, rows, multi_label)


def token_part(ids: list[int], sequence_length: int, max_seq_length: int) -> tuple[list[int], list[int]]:
    """(the kept tokens, the padding) of one padded row."""
    kept = min(sequence_length, max_seq_length)
    return ids[:kept], ids[kept:]


def sorted_rows(rows: list[dict], keys: Sequence[str]) -> list[tuple]:
    return sorted(tuple(json.dumps(row[k]) for k in keys) for row in rows)


# --- Word tokenizer ----------------------------------------------------------------------------

WORD_CONFIG = PreprocessConfig(vocab_size=16, min_frequency=2, num_oov_buckets=2, max_seq_length=8)

FILLERS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")
TRUNCATED_TEXT = "the cat, the dog, the good hello."  # 10 tokens
# Counts after normalization: the 9; ',' 5; hello, cat, dog, good, '.' 4; each filler 2; zebra 1.
# 17 words reach min_frequency but only vocab_size - num_oov_buckets - 1 = 13 fit.
WORD_DOCUMENTS = [
    ("the the the the the the", "pos"),
    ("Hello cat, good dog.", "pos"),
    ("hello dog, good cat.", "neg"),
    ("Hello good, cat dog.", "neutral"),
    (" ".join(FILLERS[:5]), "neg"),
    (" ".join(FILLERS[5:]), "neg"),
    (" ".join(FILLERS) + " zebra", "pos"),
    (TRUNCATED_TEXT, "pos"),
]
UNSEEN_WORDS = [f"unseen{i}" for i in range(30)]


@pytest.fixture(scope="module")
def word_run(tmp_path_factory) -> TransformRun:
    return analyze_and_transform(tmp_path_factory.mktemp("word"), WORD_DOCUMENTS, WORD_CONFIG)


def word_id(run: TransformRun, word: str) -> int:
    vocabulary = run.vocabulary()
    assert word in vocabulary, f"{word!r} should be in the token vocabulary {vocabulary}"
    return vocabulary.index(word) + 1


def oov_range(run: TransformRun) -> range:
    size = len(run.vocabulary())
    return range(size + 1, size + WORD_CONFIG.num_oov_buckets + 1)


def test_token_vocabulary_is_a_named_asset_of_the_transform_fn(word_run):
    path = word_run.output.vocabulary_file_by_name(features.TOKEN_VOCABULARY)
    assert os.path.isfile(path)
    assert path.startswith(os.path.join(word_run.output_dir, "transform_fn", ""))  # travels with transform_fn/
    with open(path, encoding="utf-8") as f:
        assert f.read().splitlines() == word_run.vocabulary()


def test_most_frequent_word_gets_id_1(word_run):
    assert word_run.vocabulary()[0] == "the"
    assert word_run.ids("the") == [1, 0, 0, 0, 0, 0, 0, 0]
    assert [1, 1, 1, 1, 1, 1, 0, 0] in [row[features.TOKEN_IDS] for row in word_run.rows]


def test_word_ids_are_vocabulary_index_plus_one(word_run):
    vocabulary = word_run.vocabulary()
    rows = word_run.transform(vocabulary)
    assert [row[features.TOKEN_IDS][0] for row in rows] == list(range(1, len(vocabulary) + 1))
    assert all(row[features.SEQUENCE_LENGTH] == 1 for row in rows)


def test_pad_id_is_never_a_token_and_fills_the_row_after_the_last_token(word_run):
    assert word_run.ids("hello cat") == [word_id(word_run, "hello"), word_id(word_run, "cat"), 0, 0, 0, 0, 0, 0]
    for row in word_run.rows:
        assert len(row[features.TOKEN_IDS]) == WORD_CONFIG.max_seq_length
        tokens, padding = token_part(row[features.TOKEN_IDS], row[features.SEQUENCE_LENGTH],
                                     WORD_CONFIG.max_seq_length)
        assert features.PAD_ID not in tokens
        assert set(padding) <= {features.PAD_ID}


def test_truncation_keeps_the_first_tokens_and_sequence_length_counts_all_of_them(word_run):
    (row,) = word_run.transform([TRUNCATED_TEXT])
    expected = [word_id(word_run, w) for w in ["the", "cat", ",", "the", "dog", ",", "the", "good"]]
    assert row[features.TOKEN_IDS] == expected
    assert row[features.SEQUENCE_LENGTH] == 10
    assert {"sequence_length": 10, "token_ids": expected} in [
        {k: r[k] for k in (features.SEQUENCE_LENGTH, features.TOKEN_IDS)} for r in word_run.rows]
    assert sorted(r[features.SEQUENCE_LENGTH] for r in word_run.rows) == [5, 5, 6, 6, 6, 6, 10, 11]


def test_words_below_min_frequency_map_into_the_oov_buckets(word_run):
    assert "zebra" not in word_run.vocabulary()
    (zebra_id, *padding) = word_run.ids("zebra")
    assert zebra_id in oov_range(word_run)
    assert set(padding) == {features.PAD_ID}


def test_unseen_words_map_into_the_oov_buckets(word_run):
    rows = word_run.transform(UNSEEN_WORDS)
    ids = {row[features.TOKEN_IDS][0] for row in rows}
    assert ids == set(oov_range(word_run))  # 30 words: every bucket gets some


def test_id_space_never_exceeds_vocab_size(word_run):
    assert len(word_run.vocabulary()) == WORD_CONFIG.vocab_size - WORD_CONFIG.num_oov_buckets - 1
    all_ids = [i for row in word_run.rows for i in row[features.TOKEN_IDS]]
    all_ids += [i for row in word_run.transform(UNSEEN_WORDS + ["zebra"]) for i in row[features.TOKEN_IDS]]
    assert max(all_ids) == WORD_CONFIG.vocab_size - 1
    assert min(all_ids) == features.PAD_ID


def test_case_and_unicode_compatibility_forms_are_normalized(word_run):
    hello = word_id(word_run, "hello")
    for text in ["hello", "Hello", "HELLO", "\uff28\uff45\uff4c\uff4c\uff4f"]:  # the last is full-width
        assert word_run.ids(text)[:2] == [hello, 0], text


def test_punctuation_is_split_from_words(word_run):
    good, dot, comma = word_id(word_run, "good"), word_id(word_run, "."), word_id(word_run, ",")
    (good_dot, cat_comma_dog) = word_run.transform(["good.", "cat,dog"])
    assert good_dot[features.TOKEN_IDS][:3] == [good, dot, 0]
    assert good_dot[features.SEQUENCE_LENGTH] == 2
    assert cat_comma_dog[features.TOKEN_IDS][:4] == [word_id(word_run, "cat"), comma, word_id(word_run, "dog"), 0]


def test_html_line_breaks_are_removed(word_run):
    cat, dog = word_id(word_run, "cat"), word_id(word_run, "dog")
    rows = word_run.transform(["cat<br />dog", "cat<br/>dog", "cat<BR>dog"])
    assert [row[features.TOKEN_IDS][:3] for row in rows] == [[cat, dog, 0]] * 3
    assert [row[features.SEQUENCE_LENGTH] for row in rows] == [2, 2, 2]


def test_label_ids_are_indices_in_the_label_vocabulary(word_run):
    labels = word_run.vocabulary(features.LABEL_VOCABULARY)
    assert sorted(labels) == ["neg", "neutral", "pos"]
    texts, doc_labels = zip(*WORD_DOCUMENTS)
    rows = word_run.transform(texts, doc_labels)
    assert [row[features.LABEL_ID] for row in rows] == [labels.index(label) for label in doc_labels]
    assert sorted(row[features.LABEL_ID] for row in word_run.rows) == sorted(labels.index(l) for l in doc_labels)


def test_pipeline_rows_equal_the_saved_transform_fn_applied_to_the_same_documents(word_run):
    texts, labels = zip(*WORD_DOCUMENTS)
    keys = (features.TOKEN_IDS, features.SEQUENCE_LENGTH, features.LABEL_ID)
    assert sorted_rows(word_run.rows, keys) == sorted_rows(word_run.transform(texts, labels), keys)


# --- Multi-label -------------------------------------------------------------------------------

MULTI_LABEL_DOCUMENTS = [
    ("the match was great", ["sports"]),
    ("the election and the match", ["sports", "politics"]),
    ("a new phone", ["tech"]),
    ("phones in the election", ["politics", "tech"]),
    ("the match again", ["sports"]),
    ("all of it", ["sports", "politics", "tech"]),
]


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory) -> TransformRun:
    return analyze_and_transform(tmp_path_factory.mktemp("multi"), MULTI_LABEL_DOCUMENTS, WORD_CONFIG,
                                 multi_label=True)


def expected_multi_hot(vocabulary: list[str], labels: list[str]) -> list[float]:
    return [1.0 if label in labels else 0.0 for label in vocabulary]


def test_multi_label_documents_get_a_multi_hot_vector_instead_of_a_label_id(multi_label_run):
    spec = multi_label_run.output.transformed_feature_spec()
    assert features.LABEL_MULTI_HOT in spec
    assert features.LABEL_ID not in spec


def test_multi_hot_is_one_exactly_at_the_label_vocabulary_indices(multi_label_run):
    vocabulary = multi_label_run.vocabulary(features.LABEL_VOCABULARY)
    assert sorted(vocabulary) == ["politics", "sports", "tech"]
    texts, labels = zip(*MULTI_LABEL_DOCUMENTS)
    rows = multi_label_run.transform(texts, labels)
    assert [row[features.LABEL_MULTI_HOT] for row in rows] == [expected_multi_hot(vocabulary, l) for l in labels]


def test_pipeline_multi_hot_rows_have_one_column_per_label(multi_label_run):
    vocabulary = multi_label_run.vocabulary(features.LABEL_VOCABULARY)
    produced = sorted(row[features.LABEL_MULTI_HOT] for row in multi_label_run.rows)
    assert produced == sorted(expected_multi_hot(vocabulary, labels) for _, labels in MULTI_LABEL_DOCUMENTS)
    assert all(len(row) == len(vocabulary) for row in produced)


# --- WordPiece tokenizer -----------------------------------------------------------------------

WORDPIECE_CONFIG = PreprocessConfig(tokenizer="wordpiece", vocab_size=60, max_seq_length=8)

# No 'j', 'k', 'p', 'q', 'x' or 'z' anywhere in this corpus.
WORDPIECE_DOCUMENTS = [
    (f"{subject} {verb}.", "pos" if verb in ("was great", "is fun") else "neg")
    for subject in ("the movie", "the film", "the story", "the actor")
    for verb in ("was great", "was bad", "is boring", "is fun")
] + [
    ("movies and films", "pos"),
    ("the actors were good", "pos"),
    ("a story about a film", "neg"),
    ("The film was a great story, the actors were great and the movie was fun!", "pos"),
    ("boring, boring, boring", "neg"),
    ("good movie", "pos"),
    ("bad film", "neg"),
    ("great actors", "pos"),
]
UNSEEN_BUT_SPELLABLE = "filmstory"  # only letters the corpus has
UNSPELLABLE = "xyzzy"  # has letters the corpus never had


@pytest.fixture(scope="module")
def wordpiece_run(tmp_path_factory) -> TransformRun:
    return analyze_and_transform(tmp_path_factory.mktemp("wordpiece"), WORDPIECE_DOCUMENTS, WORDPIECE_CONFIG)


def test_wordpiece_vocabulary_asset_starts_with_pad_then_unk(wordpiece_run):
    vocabulary = wordpiece_run.vocabulary()
    assert vocabulary[:2] == [features.PAD_TOKEN, features.UNK_TOKEN]
    assert len(set(vocabulary)) == len(vocabulary)
    assert os.path.isfile(wordpiece_run.output.vocabulary_file_by_name(features.TOKEN_VOCABULARY))


def test_known_words_map_to_their_wordpiece_vocabulary_id(wordpiece_run):
    vocabulary = wordpiece_run.vocabulary()
    for word in ("the", "movie", "film"):
        assert word in vocabulary
        assert wordpiece_run.ids(word)[:2] == [vocabulary.index(word), features.PAD_ID], word


def test_unseen_word_is_split_into_known_pieces(wordpiece_run):
    vocabulary = wordpiece_run.vocabulary()
    (row,) = wordpiece_run.transform([UNSEEN_BUT_SPELLABLE])
    tokens, padding = token_part(row[features.TOKEN_IDS], row[features.SEQUENCE_LENGTH],
                                 WORDPIECE_CONFIG.max_seq_length)
    pieces = [vocabulary[i] for i in tokens]
    assert 1 < len(pieces) <= WORDPIECE_CONFIG.max_seq_length
    assert features.PAD_ID not in tokens and vocabulary.index(features.UNK_TOKEN) not in tokens
    assert not pieces[0].startswith(features.WORDPIECE_SUFFIX)
    assert all(p.startswith(features.WORDPIECE_SUFFIX) for p in pieces[1:])
    assert "".join(p.removeprefix(features.WORDPIECE_SUFFIX) for p in pieces) == UNSEEN_BUT_SPELLABLE
    assert set(padding) == {features.PAD_ID}


def test_word_with_unknown_characters_becomes_unk_not_padding(wordpiece_run):
    (row,) = wordpiece_run.transform([UNSPELLABLE])
    assert row[features.TOKEN_IDS] == [1, 0, 0, 0, 0, 0, 0, 0]
    assert row[features.SEQUENCE_LENGTH] == 1
    assert wordpiece_run.vocabulary()[1] == features.UNK_TOKEN


def test_wordpiece_rows_are_padded_with_zeros_and_never_contain_pad_inside(wordpiece_run):
    vocabulary_size = len(wordpiece_run.vocabulary())
    lengths = []
    for row in wordpiece_run.rows:
        tokens, padding = token_part(row[features.TOKEN_IDS], row[features.SEQUENCE_LENGTH],
                                     WORDPIECE_CONFIG.max_seq_length)
        assert features.PAD_ID not in tokens
        assert all(0 < i < vocabulary_size for i in tokens)
        assert set(padding) <= {features.PAD_ID}
        lengths.append(row[features.SEQUENCE_LENGTH])
    assert min(lengths) < WORDPIECE_CONFIG.max_seq_length < max(lengths)  # both padding and truncation seen


FRESH_PROCESS_SCRIPT = """
import json, sys
import tensorflow_text  # registers the tokenizer ops before the transform graph is loaded
import tensorflow as tf
import tensorflow_transform as tft
output_dir, texts = sys.argv[1], json.loads(sys.argv[2])
out = tft.TFTransformOutput(output_dir).transform_raw_features({"text": tf.constant(texts)})
print(json.dumps({name: value.numpy().tolist() for name, value in out.items()}))
"""


def test_saved_wordpiece_transform_fn_gives_the_same_ids_in_a_fresh_process(wordpiece_run, tmp_path):
    texts = [text for text, _ in WORDPIECE_DOCUMENTS]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, wordpiece_run.output_dir, json.dumps(texts)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]
    columns = json.loads(completed.stdout.strip().splitlines()[-1])
    fresh = [{features.TOKEN_IDS: ids, features.SEQUENCE_LENGTH: length}
             for ids, length in zip(columns[features.TOKEN_IDS], columns[features.SEQUENCE_LENGTH])]

    keys = (features.TOKEN_IDS, features.SEQUENCE_LENGTH)
    assert sorted_rows(fresh, keys) == sorted_rows(wordpiece_run.rows, keys)
    assert fresh == [{k: row[k] for k in keys} for row in wordpiece_run.transform(texts)]
