"""Pretraining through the real commands: unlabelled text → `pipelines.preprocess --task pretrain`
→ `model.pretrain` → a pretrained-encoder directory of the data's tokenizer. (That such a directory
fine-tunes through `preprocess --pretrained` and `trainer --init-from`: tests/model/test_pretrain.py.)"""

from __future__ import annotations

import json

import pytest

from schemas import features
from schemas import pretrained as spec
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def unlabelled_corpus(path) -> str:
    """Documents of several sentences each, without a label field."""
    lines = []
    for i in range(40):
        sentences = [f"Team {i % 7} said {j} goals came late{'!' if j % 3 else '.'}" for j in range(2 + i % 4)]
        lines.append(json.dumps({"id": f"doc-{i}", "text": " ".join(sentences)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_pairs_from_the_data_stage_pretrain_an_encoder_of_their_tokenizer(tmp_path):
    pairs, encoder = tmp_path / "pairs", tmp_path / "encoder"
    prepared = run_cli("pipelines.preprocess", "--task", "pretrain", "--input", unlabelled_corpus(tmp_path / "u.jsonl"),
                       "--output-dir", str(pairs), "--vocab-size", "60", "--max-seq-length", "32")
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    pretrained = run_cli("model.pretrain", "--data-dir", str(pairs), "--output-dir", str(encoder), "--steps", "4",
                         "--steps-per-checkpoint", "2", "--batch-size", "8", "--eval-batches", "1",
                         "--embedding-dim", "8", "--hidden-dim", "16", "--num-layers", "1", "--num-heads", "2",
                         "--intermediate-dim", "16")
    assert pretrained.returncode == 0, pretrained.stderr[-3000:]

    stats = json.loads((pairs / features.STATS_FILE).read_text())
    metrics = json.loads((encoder / "metrics.json").read_text())
    description = json.loads((encoder / spec.ENCODER_FILE).read_text())
    assert metrics["steps"] == 4 and 0.0 <= metrics["mlm_accuracy"] <= 1.0 and 0.0 <= metrics["sop_accuracy"] <= 1.0
    assert metrics["train_pairs"] == stats["pairs"]["train"] and metrics["eval_pairs"] == stats["pairs"]["eval"]
    assert description["tokenizer"]["sha256"] == stats["tokenizer_sha256"]
    assert description["backbone"]["vocabulary_size"] == stats["vocab_size"]
    assert (encoder / spec.TOKENIZER_MODEL_FILE).read_bytes() == (pairs / features.TOKENIZER_MODEL_FILE).read_bytes()

