"""The pretrained-encoder directory: written whole or not at all, read back with checks."""

from __future__ import annotations

import json

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from model import pretrained_encoder
from model.pretrained_encoder import (load_backbone, load_encoder, read_encoder_config, tokenizer_description,
                                      write_pretrained_dir)
from schemas import output_dirs
from schemas import pretrained as spec
from schemas.errors import UserError
from tests.conftest import REPO_ROOT

SPIECE = (REPO_ROOT / "tests" / "fixtures" / "albert" / "spiece.model").read_bytes()
TINY = dict(vocabulary_size=200, num_layers=2, num_heads=2, embedding_dim=4, hidden_dim=8, intermediate_dim=6,
            num_groups=1, num_inner_repetitions=1, max_sequence_length=10, num_segments=2, dropout=0.0)
PROVENANCE = {"source": "made-up", "source_format": spec.SOURCE_PRETRAIN, "tensors": 25, "sha256": "0" * 64,
              "pooler": spec.POOLER_IMPORTED}


def tiny_backbone() -> keras_hub.models.AlbertBackbone:
    return keras_hub.models.AlbertBackbone(**TINY)


def write(directory, backbone=None, **kwargs) -> str:
    return write_pretrained_dir(str(directory), backbone or tiny_backbone(), SPIECE,
                                tokenizer_description(SPIECE, lowercase=True, source="spiece.model"), PROVENANCE,
                                **kwargs)


def names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_written_directory_loads_back_as_the_same_backbone(tmp_path):
    backbone = tiny_backbone()
    directory = write(tmp_path / "enc", backbone, stage=output_dirs.PRETRAIN)

    assert names(tmp_path) == ["enc"]  # the staging sibling is gone
    assert names(tmp_path / "enc") == sorted([output_dirs.STAGE_MARKER, "_SUCCESS", spec.ENCODER_FILE,
                                              spec.WEIGHTS_FILE, spec.TOKENIZER_MODEL_FILE])
    assert json.loads((tmp_path / "enc" / output_dirs.STAGE_MARKER).read_text())["stage"] == output_dirs.PRETRAIN
    config = read_encoder_config(directory)
    assert config["backbone"] == TINY
    assert config["provenance"]["project_version"] == output_dirs.PROJECT_VERSION and config["provenance"]["created"]
    reloaded = load_backbone(directory)
    assert isinstance(reloaded, keras_hub.models.AlbertBackbone)
    for original, loaded in zip(backbone.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(original.numpy(), loaded.numpy())


def test_load_encoder_gives_the_project_encoder_the_directorys_weights(tmp_path):
    backbone = tiny_backbone()
    encoder = load_encoder(write(tmp_path / "enc", backbone), pooling="cls", dropout=0.1)
    assert encoder.max_seq_length == 10 and encoder.vocab_size == 200 and encoder.dropout == 0.1
    for original, loaded in zip(backbone.weights, encoder.backbone.weights, strict=True):
        np.testing.assert_array_equal(original.numpy(), loaded.numpy())


def test_a_directory_on_another_filesystem_is_written_and_read_back():
    directory = write("ram://pretrained/enc")
    assert "_SUCCESS" in tf.io.gfile.listdir(directory)
    assert load_backbone(directory).count_params() == tiny_backbone().count_params()


def test_a_failed_write_leaves_neither_the_directory_nor_its_staging_copy(tmp_path, monkeypatch):
    def failing_save(backbone, path):
        raise tf.errors.PermissionDeniedError(None, None, "disk says no")

    monkeypatch.setattr(pretrained_encoder, "_save_weights", failing_save)
    with pytest.raises(UserError, match="Cannot write .*disk says no"):
        write(tmp_path / "enc")
    assert names(tmp_path) == []


def test_a_newer_format_version_is_refused_naming_both_versions(tmp_path):
    directory = write(tmp_path / "enc")
    path = tmp_path / "enc" / spec.ENCODER_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    for read in (read_encoder_config, load_backbone):
        with pytest.raises(UserError, match=rf"format_version 99, newer .*format_version {spec.FORMAT_VERSION}\)"):
            read(directory)


def test_an_unfinished_or_foreign_directory_is_not_read(tmp_path):
    write(tmp_path / "enc")
    (tmp_path / "enc" / "_SUCCESS").unlink()
    with pytest.raises(UserError, match="unfinished pretrained-encoder directory"):
        read_encoder_config(str(tmp_path / "enc"))
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="is not a pretrained-encoder directory"):
        load_backbone(str(tmp_path / "other"))


def test_another_stages_directory_is_never_replaced(tmp_path):
    write(tmp_path / "enc", stage=output_dirs.PRETRAIN)
    with pytest.raises(UserError, match="holds the output of the pretrain stage"):
        write(tmp_path / "enc", stage=output_dirs.IMPORT, overwrite=True)
    assert read_encoder_config(str(tmp_path / "enc"))["provenance"]["source"] == "made-up"


def test_tokenizer_description_finds_albert_special_pieces():
    description = tokenizer_description(SPIECE, lowercase=False, source="spiece.model")
    assert description["special_tokens"] == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    assert description["vocabulary_size"] == 200 and description["lowercase"] is False


def test_a_sentencepiece_model_without_cls_is_refused(tmp_path):
    import sentencepiece

    with open(tmp_path / "plain.model", "wb") as writer:
        sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(["a tiny corpus of words"] * 20),
                                                 model_writer=writer, vocab_size=18, pad_id=0, unk_id=1, bos_id=-1,
                                                 eos_id=-1, minloglevel=2)
    with pytest.raises(UserError, match=r"plain.model has no \[CLS\] or \[SEP\] piece"):
        tokenizer_description((tmp_path / "plain.model").read_bytes(), lowercase=True, source="plain.model")
