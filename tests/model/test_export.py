"""The raw-text export: same probabilities as the Keras model, hermetic, label names inside."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from model.classifier import build_classifier, build_encoder
from model.classifier_head import ClassifierHead
from model.data import read_preprocessed
from model.export import export_model, latest_export
from model.ngram_logits import NAIVE_BAYES, TFIDF, fit_feature_scales, ngram_logits_for
from model.padding import trim_trailing_padding
from schemas import export_contract as contract
from schemas import features

TEXTS_OF_EVERY_LENGTH = ["", "   ", "goal", "team " * 40 + "win",  # empty, blank, one word, over max_seq_length
                         "Bank profit and market shares grow this week.", "x", "the lab data"]
TEXTS = ["The team wins the match after a late goal.", "Bank profit and market shares grow this week.",
         "A new physics experiment in the lab", "unseen zebra words only", "x"]

SERVE_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops; nothing else from the project is imported
texts = tf.constant(json.loads(sys.stdin.read()))
served = []
for export_dir in sys.argv[1:]:
    outputs = tf.saved_model.load(export_dir).signatures["serving_default"](text=texts)
    served.append({k: v.numpy().tolist() for k, v in outputs.items()})
print(json.dumps(served, default=lambda b: b.decode()))
"""


def untrained_classifier(data, encoder_name: str, multi_label: bool = False) -> keras.Model:
    keras.utils.set_random_seed(1)
    encoder = build_encoder(encoder_name, data.vocab_size, data.max_seq_length, embedding_dim=8,
                            **({"projection_dim": 8, "lstm_units": 4, "num_lstm_layers": 1} if encoder_name == "bilstm"
                               else {"hidden_dim": 8, "num_layers": 2, "num_heads": 2, "intermediate_dim": 16}))
    head = ClassifierHead(num_outputs=data.num_labels, hidden_units=(8,),
                          activation="sigmoid" if multi_label else "softmax")
    return build_classifier(encoder, head)


def serve_each_in_fresh_process(export_dirs: list[str], texts: list[str]) -> list[dict]:
    """The serving signature's outputs for `texts` from each export, all loaded in one fresh process."""
    result = subprocess.run([sys.executable, "-c", SERVE_IN_FRESH_PROCESS, *export_dirs], input=json.dumps(texts),
                            capture_output=True, text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return json.loads(result.stdout.strip().splitlines()[-1])


def serve_in_fresh_process(export_dir: str, texts: list[str]) -> dict:
    (served,) = serve_each_in_fresh_process([export_dir], texts)
    return served


ENCODER_NAMES = ("bilstm", "albert")


@pytest.mark.slow
def test_export_serves_raw_text_with_the_models_probabilities_after_the_data_is_gone(tmp_path, multiclass_data):
    # One export per encoder, each from its own copy of the data, served together in one fresh process.
    exports = {}
    for encoder_name in ENCODER_NAMES:
        data_dir = tmp_path / encoder_name / "prep"
        shutil.copytree(multiclass_data, data_dir)
        data = read_preprocessed(str(data_dir))
        model = untrained_classifier(data, encoder_name)
        token_ids = tft.TFTransformOutput(str(data_dir)).transform_raw_features(
            {features.TEXT: tf.constant(TEXTS)}, drop_unused_features=True)[features.TOKEN_IDS]
        expected = model.predict(token_ids, verbose=0)
        export_dir = export_model(model, str(data_dir), str(tmp_path / encoder_name / "m"), list(data.label_names),
                                  multi_label=False, threshold=0.5, config_json="{}", version=7)
        shutil.rmtree(data_dir)  # hermetic: the transform graph and vocabularies live in the export
        exports[encoder_name] = (export_dir, expected, data.label_names)

    served_by_export = serve_each_in_fresh_process([export_dir for export_dir, _, _ in exports.values()], TEXTS)

    for (encoder_name, (export_dir, expected, label_names)), served in zip(exports.items(), served_by_export):
        np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5, err_msg=encoder_name)
        assert served["label"] == [label_names[i] for i in np.argmax(expected, axis=1)], encoder_name
        np.testing.assert_allclose(served["score"], expected.max(axis=1), atol=1e-5, err_msg=encoder_name)
        assert latest_export(str(tmp_path / encoder_name / "m")) == export_dir and export_dir.endswith("/export/7")
        with open(os.path.join(export_dir, contract.LABELS_FILE)) as f:
            assert tuple(f.read().split()) == label_names
        with open(os.path.join(export_dir, contract.EXPORT_METADATA)) as f:
            metadata = json.load(f)
        assert metadata[contract.METADATA_VERSION] == "7"  # a string: the version every prediction carries
        assert metadata[contract.METADATA_LABEL_NAMES] == list(label_names)
        assert metadata[contract.METADATA_MULTI_LABEL] is False


@pytest.mark.slow
def test_the_ngram_features_of_a_text_are_the_same_in_training_and_in_an_export_served_elsewhere(
        tmp_path, multiclass_data):
    data = read_preprocessed(multiclass_data)
    texts = [*TEXTS, "zebra quokka unseen pairs", "goal goal goal the team"]
    token_ids = tft.TFTransformOutput(multiclass_data).transform_raw_features(
        {features.TEXT: tf.constant(texts)}, drop_unused_features=True)[features.TOKEN_IDS]
    exports = {}  # one export per weighting, served together in one other process
    for weighting in (NAIVE_BAYES, TFIDF):
        layer = ngram_logits_for(weighting, data.num_labels, data.vocab_size, max_ngram=3, num_buckets=257)
        model = build_classifier(None, None, layer)
        fit_feature_scales(layer, data, weighting)  # from the training TFRecords, as the trainer does
        layer.weights_table.assign(
            np.random.default_rng(0).normal(size=layer.weights_table.shape).astype(np.float32))
        expected = model.predict(token_ids, verbose=0)
        assert len({tuple(np.round(p, 4)) for p in expected}) > 3, weighting  # the n-grams tell the texts apart
        export_dir = export_model(model, multiclass_data, str(tmp_path / weighting / "m"), list(data.label_names),
                                  multi_label=False, threshold=0.5, config_json="{}", version=1)
        exports[weighting] = (export_dir, expected)

    # Another process: hashing does not depend on it.
    served_by_export = serve_each_in_fresh_process([export_dir for export_dir, _ in exports.values()], texts)

    for (weighting, (_, expected)), served in zip(exports.items(), served_by_export):
        np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5, err_msg=weighting)


@pytest.mark.slow
def test_multilabel_export_returns_the_labels_over_the_threshold(tmp_path, multilabel_data):
    data = read_preprocessed(multilabel_data)
    model = untrained_classifier(data, "bilstm", multi_label=True)
    export_dir = export_model(model, multilabel_data, str(tmp_path / "m"), list(data.label_names),
                              multi_label=True, threshold=0.5, config_json="{}", version=1)
    served = serve_in_fresh_process(export_dir, TEXTS)
    for probabilities, labels in zip(served["probabilities"], served["labels"]):
        expected = [name for name, p in zip(data.label_names, probabilities) if p >= 0.5]
        assert (labels.split(contract.LABEL_SEPARATOR) if labels else []) == expected


@pytest.mark.slow
@pytest.mark.parametrize("encoder_name", ["bilstm", "albert"])
def test_dynamic_and_fixed_length_signatures_agree_on_texts_of_every_length(tmp_path, multiclass_data, encoder_name):
    data = read_preprocessed(multiclass_data)
    model = untrained_classifier(data, encoder_name)
    export_dir = export_model(model, multiclass_data, str(tmp_path / "m"), list(data.label_names),
                              multi_label=False, threshold=0.5, config_json="{}", version=1)
    signatures = tf.saved_model.load(export_dir).signatures

    for texts in (TEXTS_OF_EVERY_LENGTH, ["", "  "], ["goal", "x"]):  # mixed; no token at all; short only
        dynamic = signatures[contract.DYNAMIC_SIGNATURE](text=tf.constant(texts))
        fixed = signatures[contract.FIXED_LENGTH_SIGNATURE](text=tf.constant(texts))
        np.testing.assert_allclose(dynamic["probabilities"].numpy(), fixed["probabilities"].numpy(), atol=1e-5)
        assert dynamic["label"].numpy().tolist() == fixed["label"].numpy().tolist()
        np.testing.assert_allclose(dynamic["score"].numpy(), fixed["score"].numpy(), atol=1e-5)
    with open(os.path.join(export_dir, contract.EXPORT_METADATA)) as f:
        assert json.load(f)[contract.METADATA_SIGNATURES] == {
            "longest": contract.DYNAMIC_SIGNATURE, "max_length": contract.FIXED_LENGTH_SIGNATURE}


def test_export_version_must_be_digits(tmp_path):
    with pytest.raises(ValueError, match="Received: version='v2'"):
        export_model(None, "unused", str(tmp_path), ["a", "b"], multi_label=False, threshold=0.5, config_json="{}",
                     version="v2")


def test_latest_export_is_the_highest_version_number(tmp_path):
    for name in ("9", "10", ".staging-11", "notes"):
        (tmp_path / "export" / name).mkdir(parents=True)
    assert latest_export(str(tmp_path)) == f"{tmp_path}/export/10"
    assert latest_export(str(tmp_path / "elsewhere")) is None


def test_trimming_keeps_every_column_up_to_the_batchs_last_token():
    token_ids = tf.constant([[5, 6, 0, 0, 0], [7, 0, 3, 0, 0], [0, 0, 0, 0, 0]], dtype=tf.int64)
    assert trim_trailing_padding(token_ids).numpy().tolist() == [[5, 6, 0], [7, 0, 3], [0, 0, 0]]
    assert trim_trailing_padding(tf.zeros([2, 5], tf.int64)).shape == (2, 1)  # no token at all: one column
    assert trim_trailing_padding(tf.zeros([0, 5], tf.int64)).shape == (0, 1)  # no documents


def test_trimming_rounds_the_width_up_to_a_multiple_but_never_past_the_padded_length():
    token_ids = tf.constant([[5, 6, 7, 0, 0, 0, 0, 0, 0, 0]], dtype=tf.int64)
    assert trim_trailing_padding(token_ids, multiple=4).shape == (1, 4)
    assert trim_trailing_padding(token_ids, multiple=8).shape == (1, 8)
    assert trim_trailing_padding(tf.ones([1, 10], tf.int64), multiple=8).shape == (1, 10)
