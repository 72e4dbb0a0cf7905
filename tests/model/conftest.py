"""Fixtures for the model tests: tiny preprocessed corpora and tiny model configurations.

The corpora are preprocessed by the preprocessing command in a subprocess, as a user would run
it: the model tests never import `pipelines` (nor Beam). Building one costs a Beam run, so only
`slow` tests use them, and each is built once per session.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_documents, run_cli, write_corpus

TINY_MODEL_YAML = """
bilstm:
  embedding_dim: 16
  projection_dim: 16
  lstm_units: 8
  num_lstm_layers: 1
albert:
  embedding_dim: 16
  hidden_dim: 16
  num_layers: 2
  num_groups: 1
  num_heads: 2
  intermediate_dim: 32
head:
  hidden_units: [16]
ngrams:
  num_buckets: 64
train:
  batch_size: 16
  learning_rate: 0.01
  early_stopping_patience: 0
"""


def preprocessed_corpus(directory, documents, *extra: str) -> str:
    """`python -m pipelines.preprocess` over `documents`; its output directory."""
    output = directory / "prep"
    result = run_cli("pipelines.preprocess", "--input", write_corpus(documents, directory / "raw", "jsonl"),
                     "--output-dir", str(output), "--max-seq-length", "16", "--min-frequency", "1",
                     "--eval-fraction", "0.3", *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(output)


@pytest.fixture(scope="session")
def multiclass_data(tmp_path_factory) -> str:
    return preprocessed_corpus(tmp_path_factory.mktemp("multiclass"), make_documents(150))


@pytest.fixture(scope="session")
def binary_data(tmp_path_factory) -> str:
    documents = [d for d in make_documents(150) if d["label"] != "business"]
    return preprocessed_corpus(tmp_path_factory.mktemp("binary"), documents)


@pytest.fixture(scope="session")
def multilabel_data(tmp_path_factory) -> str:
    documents = make_documents(150)
    for i, d in enumerate(documents):
        d["label"] = d["label"] + (",urgent" if "team" in d["text"] or i % 5 == 0 else "")
    return preprocessed_corpus(tmp_path_factory.mktemp("multilabel"), documents, "--multi-label")


@pytest.fixture(scope="session")
def tiny_job_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("job") / "tiny.yaml"
    path.write_text(TINY_MODEL_YAML)
    return str(path)


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)
