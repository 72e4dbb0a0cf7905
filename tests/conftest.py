"""Shared fixtures: a small labelled corpus, written in any of the supported input formats."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.runtime_defaults import apply_tensorflow_defaults

apply_tensorflow_defaults()  # tests run TensorFlow as the stages do (loaded after this file)

REPO_ROOT = Path(__file__).resolve().parent.parent

_TOPICS = {
    "sports": "match goal team coach season league score players stadium win",
    "science": "experiment theory lab physics cells data research energy planet study",
    "business": "market shares profit company deal bank prices trade growth revenue",
}
_FILLER = "the a of and today report new big small local week said after".split()


def make_documents(count: int = 120, seed: int = 7) -> list[dict]:
    """Deterministic short documents over three topics, with a few exact duplicate texts."""
    rng = random.Random(seed)
    documents = []
    for i in range(count):
        label = list(_TOPICS)[i % len(_TOPICS)]
        words = rng.choices(_TOPICS[label].split(), k=6) + rng.choices(_FILLER, k=6)
        rng.shuffle(words)
        text = " ".join(words).capitalize() + "."
        documents.append({"id": f"doc-{i:04d}", "text": text, "label": label})
    for i in range(0, min(count, 12), 3):  # exact duplicates under other ids
        documents.append({"id": f"dup-{i:04d}", "text": documents[i]["text"], "label": documents[i]["label"]})
    return documents


def write_corpus(documents: list[dict], directory: Path, input_format: str) -> str:
    """Writes `documents` in `input_format`; returns the --input value for it."""
    directory.mkdir(parents=True, exist_ok=True)
    if input_format == "jsonl":
        path = directory / "corpus.jsonl"
        path.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    elif input_format in ("csv", "tsv"):
        path = directory / f"corpus.{input_format}"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"],
                                    delimiter="," if input_format == "csv" else "\t")
            writer.writeheader()
            writer.writerows(documents)
    elif input_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = directory / "corpus.parquet"
        pq.write_table(pa.Table.from_pylist(documents), path)
    elif input_format == "tfrecord":
        import tensorflow as tf

        path = directory / "corpus.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for d in documents:
                feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                           for k, v in d.items()}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    elif input_format == "textdirs":
        path = directory / "corpus"
        for d in documents:
            (path / d["label"]).mkdir(parents=True, exist_ok=True)
            (path / d["label"] / f"{d['id']}.txt").write_text(d["text"], encoding="utf-8")
    else:
        raise ValueError(input_format)
    return str(path)


@pytest.fixture
def documents() -> list[dict]:
    return make_documents()


def run_cli(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs `python -m module args...` from the repository root, as a user would."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> str:
    """A raw-text export of a tiny (untrained) BiLSTM over a preprocessed copy of make_documents()."""
    import keras

    from model.classifier import build_classifier, build_encoder
    from model.classifier_head import ClassifierHead
    from model.data import read_preprocessed
    from model.export import export_model
    from pipelines import preprocess

    directory = tmp_path_factory.mktemp("tiny_export")
    preprocess.run(["--input", write_corpus(make_documents(), directory / "raw", "jsonl"),
                    "--output-dir", str(directory / "prep"), "--max-seq-length", "16", "--min-frequency", "1"])
    data = read_preprocessed(str(directory / "prep"))
    keras.utils.set_random_seed(3)
    encoder = build_encoder("bilstm", data.vocab_size, data.max_seq_length, embedding_dim=8, projection_dim=8,
                            lstm_units=4, num_lstm_layers=1)
    model = build_classifier(encoder, ClassifierHead(num_outputs=data.num_labels, hidden_units=(8,)))
    return export_model(model, data.data_dir, str(directory / "model"), list(data.label_names), multi_label=False,
                        threshold=0.5, config_json="{}", version=42)


def unlabelled_corpus(path: Path) -> str:
    """Documents of several sentences each, without a label field, as JSON Lines at `path`."""
    lines = []
    for i in range(40):
        sentences = [f"Team {i % 7} said {j} goals came late{'!' if j % 3 else '.'}" for j in range(2 + i % 4)]
        lines.append(json.dumps({"id": f"doc-{i}", "text": " ".join(sentences)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def learned_tokenizer_pairs(tmp_path_factory) -> tuple[Path, dict]:
    """(output dir, stats) of `pipelines.preprocess --task pretrain` over unlabelled_corpus(), learning
    its SentencePiece model (vocabulary 60, pairs up to 32 tokens). Tests only read it."""
    from pipelines import preprocess

    directory = tmp_path_factory.mktemp("learned_tokenizer_pairs")
    stats = preprocess.run(["--task", "pretrain", "--input", unlabelled_corpus(directory / "u.jsonl"),
                            "--output-dir", str(directory / "pairs"), "--vocab-size", "60",
                            "--max-seq-length", "32"])
    return directory / "pairs", stats
