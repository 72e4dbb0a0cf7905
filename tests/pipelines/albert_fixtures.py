"""The reference ALBERT fixtures (tests/fixtures/albert/) as the sentencepiece tests use them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

from schemas import pretrained
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "albert"
SPIECE = FIXTURES / "spiece.model"  # unigram, 200 pieces, <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4


def write_pretrained_dir(directory, *, format_version=pretrained.FORMAT_VERSION, max_sequence_length=64,
                         lowercase=True, vocabulary_size=200, with_model=True, sha256=None) -> str:
    """A pretrained-encoder directory as schemas/pretrained.py declares it (weights left out: the
    preprocessing stage does not read them)."""
    os.makedirs(directory, exist_ok=True)
    if with_model:
        shutil.copy(SPIECE, os.path.join(directory, pretrained.TOKENIZER_MODEL_FILE))
    encoder = {
        "format_version": format_version,
        "architecture": pretrained.ARCHITECTURE_ALBERT,
        "backbone": {"vocabulary_size": vocabulary_size, "num_layers": 2, "num_heads": 2, "embedding_dim": 16,
                     "hidden_dim": 32, "intermediate_dim": 37, "num_groups": 1, "num_inner_repetitions": 1,
                     "max_sequence_length": max_sequence_length, "num_segments": 2, "dropout": 0.0},
        "tokenizer": {"type": pretrained.TOKENIZER_SENTENCEPIECE, "model_file": pretrained.TOKENIZER_MODEL_FILE,
                      "lowercase": lowercase, "vocabulary_size": 200,
                      "sha256": sha256 or hashlib.sha256(SPIECE.read_bytes()).hexdigest(),
                      "special_tokens": {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}},
        "provenance": {"source": "tests/fixtures/albert/hf", "source_format": pretrained.SOURCE_HUGGINGFACE},
    }
    with open(os.path.join(directory, pretrained.ENCODER_FILE), "w", encoding="utf-8") as f:
        json.dump(encoder, f)
    return str(directory)
