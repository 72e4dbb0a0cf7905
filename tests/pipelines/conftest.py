"""Exports for the scoring tests: a multi-label one (built like tests/conftest.py's tiny_export)
and stand-ins that hold only what is read before any model call."""

from __future__ import annotations

import json
import os

import pytest

from schemas import export_contract
from tests.conftest import make_documents, write_corpus

ARTS = "arts, culture"  # a label holding the separator: it must stay one label


def multi_label_documents(count: int = 60) -> list[dict]:
    """make_documents() with list labels: each document's topic, and ARTS on every fourth one."""
    documents = make_documents(count)
    for i, document in enumerate(documents):
        document["label"] = [document["label"]] + ([ARTS] if i % 4 == 0 else [])
    return documents


@pytest.fixture(scope="session")
def multi_label_export(tmp_path_factory) -> str:
    """A raw-text export of a tiny (untrained) multi-label BiLSTM; only slow tests use it."""
    import keras

    from model.classifier import build_classifier, build_encoder
    from model.classifier_head import ClassifierHead
    from model.data import read_preprocessed
    from model.export import export_model
    from pipelines import preprocess

    directory = tmp_path_factory.mktemp("multi_label_export")
    preprocess.run(["--input", write_corpus(multi_label_documents(), directory / "raw", "jsonl"),
                    "--output-dir", str(directory / "prep"), "--max-seq-length", "16", "--min-frequency", "1",
                    "--multi-label"])
    data = read_preprocessed(str(directory / "prep"))
    keras.utils.set_random_seed(5)
    encoder = build_encoder("bilstm", data.vocab_size, data.max_seq_length, embedding_dim=8, projection_dim=8,
                            lstm_units=4, num_lstm_layers=1)
    head = ClassifierHead(num_outputs=data.num_labels, hidden_units=(8,), activation="sigmoid")
    return export_model(build_classifier(encoder, head), data.data_dir, str(directory / "model"),
                        list(data.label_names), multi_label=True, threshold=0.5, config_json="{}", version=7)


@pytest.fixture
def fake_export(tmp_path):
    """Writes MODEL_DIR/export/<version>/ holding an empty saved_model.pb and an export.json; returns a
    function (model_dir, version, **metadata) → the export directory. Enough for everything the
    scorer checks before it loads the model."""

    def write(model_dir=None, version: int = 42, **metadata) -> str:
        export_dir = os.path.join(str(model_dir or tmp_path / "model"), export_contract.EXPORT_DIR, str(version))
        os.makedirs(os.path.join(export_dir, export_contract.ASSETS_EXTRA))
        open(os.path.join(export_dir, "saved_model.pb"), "wb").close()
        values = {export_contract.METADATA_VERSION: version, export_contract.METADATA_MULTI_LABEL: False,
                  export_contract.METADATA_THRESHOLD: 0.5, export_contract.METADATA_LABEL_NAMES: ["a", "b"],
                  export_contract.METADATA_SIGNATURES: {"longest": export_contract.DYNAMIC_SIGNATURE,
                                                        "max_length": export_contract.FIXED_LENGTH_SIGNATURE}}
        values.update(metadata)
        with open(os.path.join(export_dir, export_contract.EXPORT_METADATA), "w") as f:
            json.dump(values, f)
        return export_dir

    return write
