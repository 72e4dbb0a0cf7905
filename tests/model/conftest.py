"""Fixtures for the model tests: tiny preprocessed corpora and tiny model configurations.

The corpora are preprocessed by the preprocessing command in a subprocess, as a user would run
it: the model tests never import `pipelines` (nor Beam). Building one costs a Beam run, so only
`slow` tests use them, and each is built once per session; the shared corpora are built
together, by the command's entry point run once for each in one subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, make_documents, run_cli, write_corpus

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
  encoder: bilstm  # small corpora of short texts would otherwise get the n-gram path alone
  batch_size: 16
  learning_rate: 0.01
  early_stopping_patience: 0
"""


def preprocess_args(directory, documents, *extra: str) -> list[str]:
    """The preprocessing command's arguments for `documents`, written under `directory`, into directory/prep."""
    return ["--input", write_corpus(documents, directory / "raw", "jsonl"), "--output-dir", str(directory / "prep"),
            "--max-seq-length", "16", "--min-frequency", "1", "--eval-fraction", "0.3", *extra]


def preprocessed_corpus(directory, documents, *extra: str) -> str:
    """`python -m pipelines.preprocess` over `documents`; its output directory."""
    result = run_cli("pipelines.preprocess", *preprocess_args(directory, documents, *extra))
    assert result.returncode == 0, result.stderr[-3000:]
    return str(directory / "prep")


# The command's entry point (what `python -m pipelines.preprocess` runs), once per argument list.
_PREPROCESS_EACH = """
import json, sys
from pipelines import preprocess
for argv in json.loads(sys.stdin.read()):
    preprocess.main(argv)
"""


def preprocessed_corpora(corpora: dict[str, tuple]) -> dict[str, str]:
    """{name: (directory, documents, *extra flags)} preprocessed one after the other in one subprocess;
    {name: output directory}."""
    arguments = [preprocess_args(directory, documents, *extra) for directory, documents, *extra in corpora.values()]
    result = subprocess.run([sys.executable, "-c", _PREPROCESS_EACH], input=json.dumps(arguments), cwd=REPO_ROOT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: str(directory / "prep") for name, (directory, *_) in corpora.items()}


@pytest.fixture(scope="session")
def pretrained_dir(tmp_path_factory) -> str:
    """The reference fixture's Hugging Face checkpoint, imported (vocabulary 200, 64 positions)."""
    from model import import_checkpoint

    return import_checkpoint.run(["--checkpoint", str(REPO_ROOT / "tests" / "fixtures" / "albert" / "hf"),
                                  "--output-dir", str(tmp_path_factory.mktemp("pretrained") / "enc")])


@pytest.fixture(scope="session")
def shared_corpora(tmp_path_factory, pretrained_dir) -> dict[str, str]:
    """The multiclass, binary and multi-label corpora below, and make_documents(120) preprocessed with
    `--pretrained pretrained_dir`: {name: preprocessed output directory}."""
    binary = [d for d in make_documents(150) if d["label"] != "business"]
    multilabel = make_documents(150)
    for i, d in enumerate(multilabel):
        d["label"] = d["label"] + (",urgent" if "team" in d["text"] or i % 5 == 0 else "")
    return preprocessed_corpora({
        "multiclass": (tmp_path_factory.mktemp("multiclass"), make_documents(150)),
        "binary": (tmp_path_factory.mktemp("binary"), binary),
        "multilabel": (tmp_path_factory.mktemp("multilabel"), multilabel, "--multi-label"),
        "pretrained": (tmp_path_factory.mktemp("pretrained_data"), make_documents(120), "--pretrained", pretrained_dir),
    })


@pytest.fixture(scope="session")
def multiclass_data(shared_corpora) -> str:
    return shared_corpora["multiclass"]


@pytest.fixture(scope="session")
def binary_data(shared_corpora) -> str:
    """make_documents(150) without the business topic: two labels."""
    return shared_corpora["binary"]


@pytest.fixture(scope="session")
def multilabel_data(shared_corpora) -> str:
    """make_documents(150), each also labelled urgent when it says "team" and every fifth one."""
    return shared_corpora["multilabel"]


@pytest.fixture(scope="session")
def tiny_job_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("job") / "tiny.yaml"
    path.write_text(TINY_MODEL_YAML)
    return str(path)


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)
