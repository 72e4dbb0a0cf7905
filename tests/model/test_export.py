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
from schemas import features

pytestmark = pytest.mark.slow

TEXTS = ["The team wins the match after a late goal.", "Bank profit and market shares grow this week.",
         "A new physics experiment in the lab", "unseen zebra words only", "x"]

SERVE_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops; nothing else from the project is imported
model = tf.saved_model.load(sys.argv[1])
outputs = model.signatures["serving_default"](text=tf.constant(json.loads(sys.stdin.read())))
print(json.dumps({k: v.numpy().tolist() for k, v in outputs.items()}, default=lambda b: b.decode()))
"""


def untrained_classifier(data, encoder_name: str, multi_label: bool = False) -> keras.Model:
    keras.utils.set_random_seed(1)
    encoder = build_encoder(encoder_name, data.vocab_size, data.max_seq_length, embedding_dim=8,
                            **({"projection_dim": 8, "lstm_units": 4, "num_lstm_layers": 1} if encoder_name == "bilstm"
                               else {"hidden_dim": 8, "num_layers": 2, "num_heads": 2, "intermediate_dim": 16}))
    head = ClassifierHead(num_outputs=data.num_labels, hidden_units=(8,),
                          activation="sigmoid" if multi_label else "softmax")
    return build_classifier(encoder, head)


def serve_in_fresh_process(export_dir: str, texts: list[str]) -> dict:
    result = subprocess.run([sys.executable, "-c", SERVE_IN_FRESH_PROCESS, export_dir], input=json.dumps(texts),
                            capture_output=True, text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("encoder_name", ["bilstm", "albert"])
def test_export_serves_raw_text_with_the_models_probabilities_after_the_data_is_gone(
        tmp_path, multiclass_data, encoder_name):
    data_dir = tmp_path / "prep"
    shutil.copytree(multiclass_data, data_dir)
    data = read_preprocessed(str(data_dir))
    model = untrained_classifier(data, encoder_name)
    token_ids = tft.TFTransformOutput(str(data_dir)).transform_raw_features(
        {features.TEXT: tf.constant(TEXTS)}, drop_unused_features=True)[features.TOKEN_IDS]
    expected = model.predict(token_ids, verbose=0)

    export_dir = export_model(model, str(data_dir), str(tmp_path / "m"), list(data.label_names),
                              multi_label=False, threshold=0.5, config_json="{}", version=7)
    shutil.rmtree(data_dir)  # hermetic: the transform graph and vocabularies live in the export
    served = serve_in_fresh_process(export_dir, TEXTS)

    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["label"] == [data.label_names[i] for i in np.argmax(expected, axis=1)]
    np.testing.assert_allclose(served["score"], expected.max(axis=1), atol=1e-5)
    assert latest_export(str(tmp_path / "m")) == export_dir and export_dir.endswith("/export/7")
    with open(os.path.join(export_dir, "assets.extra", "labels.txt")) as f:
        assert tuple(f.read().split()) == data.label_names


def test_multilabel_export_returns_the_labels_over_the_threshold(tmp_path, multilabel_data):
    data = read_preprocessed(multilabel_data)
    model = untrained_classifier(data, "bilstm", multi_label=True)
    export_dir = export_model(model, multilabel_data, str(tmp_path / "m"), list(data.label_names),
                              multi_label=True, threshold=0.5, config_json="{}", version=1)
    served = serve_in_fresh_process(export_dir, TEXTS)
    for probabilities, labels in zip(served["probabilities"], served["labels"]):
        expected = [name for name, p in zip(data.label_names, probabilities) if p >= 0.5]
        assert (labels.split(",") if labels else []) == expected
