"""Pretraining through the real stages: unlabelled text → `pipelines.preprocess --task pretrain` (the
session's `learned_tokenizer_pairs`) → the `model.pretrain` command → a pretrained-encoder directory of
the data's tokenizer. (That such a directory fine-tunes through `preprocess --pretrained` and
`trainer --init-from`: tests/model/test_pretrain.py.)"""

from __future__ import annotations

import json

import pytest

from schemas import features
from schemas import pretrained as spec
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_pairs_from_the_data_stage_pretrain_an_encoder_of_their_tokenizer(tmp_path, learned_tokenizer_pairs):
    pairs, stats = learned_tokenizer_pairs
    encoder = tmp_path / "encoder"
    pretrained = run_cli("model.pretrain", "--data-dir", str(pairs), "--output-dir", str(encoder), "--steps", "4",
                         "--steps-per-checkpoint", "2", "--batch-size", "8", "--eval-batches", "1",
                         "--embedding-dim", "8", "--hidden-dim", "16", "--num-layers", "1", "--num-heads", "2",
                         "--intermediate-dim", "16")
    assert pretrained.returncode == 0, pretrained.stderr[-3000:]

    assert json.loads((pairs / features.STATS_FILE).read_text()) == stats
    metrics = json.loads((encoder / "metrics.json").read_text())
    description = json.loads((encoder / spec.ENCODER_FILE).read_text())
    assert metrics["steps"] == 4 and 0.0 <= metrics["mlm_accuracy"] <= 1.0 and 0.0 <= metrics["sop_accuracy"] <= 1.0
    assert metrics["train_pairs"] == stats["pairs"]["train"] and metrics["eval_pairs"] == stats["pairs"]["eval"]
    assert description["tokenizer"]["sha256"] == stats["tokenizer_sha256"]
    assert description["backbone"]["vocabulary_size"] == stats["vocab_size"]
    assert (encoder / spec.TOKENIZER_MODEL_FILE).read_bytes() == (pairs / features.TOKENIZER_MODEL_FILE).read_bytes()

