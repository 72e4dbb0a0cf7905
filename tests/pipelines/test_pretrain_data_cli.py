"""The pretrain task's refusals before any pipeline runs: one `error:` line, exit status 2, nothing written."""

from __future__ import annotations

import os

import pytest

from tests.conftest import make_documents, write_corpus
from tests.pipelines.albert_fixtures import SPIECE, write_pretrained_dir
from tests.pipelines.test_preprocess_cli import error_line


@pytest.mark.parametrize("flags, message", [
    (["--tokenizer", "word"], "preprocess.task pretrain needs preprocess.tokenizer sentencepiece"),
    (["--tokenizer", "wordpiece"], "Received: tokenizer='wordpiece'"),
    (["--tokenizer", "word", "--sentencepiece-model", str(SPIECE)], "needs preprocess.tokenizer sentencepiece"),
    (["--max-seq-length", "4"], "at least 5 for the pretrain task"),
])
def test_the_pretrain_task_refuses_other_tokenizers_and_lengths_without_room_for_a_pair(
        capsys, tmp_path, flags, message):
    corpus = write_corpus(make_documents(4), tmp_path, "jsonl")
    out = tmp_path / "out"

    line = error_line(capsys, ["--task", "pretrain", "--input", corpus, "--output-dir", str(out), *flags])

    assert message in line
    assert not os.path.exists(out) and not [n for n in os.listdir(tmp_path) if n.startswith("out")]


def test_a_pretrained_encoder_too_short_for_a_pair_is_refused(capsys, tmp_path):
    directory = write_pretrained_dir(tmp_path / "encoder", max_sequence_length=4)
    corpus = write_corpus(make_documents(4), tmp_path, "jsonl")

    line = error_line(capsys, ["--task", "pretrain", "--pretrained", directory, "--input", corpus,
                               "--output-dir", str(tmp_path / "out")])

    assert "Received: max_seq_length=4" in line


def test_an_unknown_task_is_refused(capsys, tmp_path):
    corpus = write_corpus(make_documents(4), tmp_path, "jsonl")
    assert "invalid choice: 'mlm'" in error_line(capsys, ["--task", "mlm", "--input", corpus,
                                                          "--output-dir", str(tmp_path / "out")])
