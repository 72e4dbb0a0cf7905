"""Fine-tuning a pretrained encoder (`--init-from DIR`): pooling, defaults, checks against the data, a run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from model import trainer
from model.automatic import choose_settings
from model.data import FRAMING_CLS_SEP, FRAMING_NONE, PreprocessedData, read_preprocessed
from model.fine_tuning import check_pretrained_fits_data, resolve_pooling
from model.model_dir import check_model_dir
from model.optimization import peak_learning_rate
from model.pretrained_encoder import load_backbone
from schemas import cli, features
from schemas.config import ConfigError, TrainConfig
from schemas.config_loader import load_job_config
from schemas.errors import UserError
from tests.conftest import REPO_ROOT, run_cli
from tests.model.conftest import read_json
from tests.model.test_export import TEXTS, serve_in_fresh_process

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "albert"
SPIECE_SHA256 = "53f9afd3c8e54077dd2f80fd41a2dd3fed2eb899381b2a260357fa4159e6a5af"  # of FIXTURES/spiece.model


def data_like(**changes) -> PreprocessedData:
    """What read_preprocessed returns for a sentencepiece run with the fixture's tokenizer."""
    data = PreprocessedData(data_dir="prep", vocab_size=200, max_seq_length=32, label_names=("a", "b"),
                            multi_label=False, train_examples=10, eval_examples=5, train_label_counts={"a": 5, "b": 5},
                            tokenizer="sentencepiece", feature_spec={}, framing=FRAMING_CLS_SEP,
                            tokenizer_sha256=SPIECE_SHA256)
    return dataclasses.replace(data, **changes)


def test_auto_pooling_is_cls_for_cls_framed_data_and_mean_otherwise():
    assert resolve_pooling("auto", data_like()) == "cls"
    assert resolve_pooling("auto", data_like(tokenizer="word", framing=FRAMING_NONE)) == "mean"
    assert resolve_pooling("mean", data_like()) == "mean"


def test_cls_pooling_on_data_without_cls_is_refused():
    with pytest.raises(UserError, match="albert.pooling cls needs sequences framed"):
        resolve_pooling("cls", data_like(tokenizer="wordpiece", framing=FRAMING_NONE))


@pytest.mark.parametrize("init_from, given, expected", [
    (None, None, 1e-3), ("enc", None, 3e-5), ("enc", 1e-4, 1e-4), (None, 0.01, 0.01)])
def test_learning_rate_defaults_to_a_fine_tuning_rate_with_init_from_and_an_explicit_one_wins(
        init_from, given, expected):
    settings = TrainConfig(encoder="albert", init_from=init_from, learning_rate=given)
    assert peak_learning_rate(settings) == expected


def test_init_from_needs_the_albert_encoder():
    with pytest.raises(ConfigError, match=r"train.init_from needs train.encoder albert .*Received: encoder='bilstm'"):
        TrainConfig(init_from="enc", encoder="bilstm")
    assert TrainConfig(init_from="enc").encoder == "auto"  # which the trainer resolves to albert


def test_data_fitting_the_pretrained_encoder_passes(pretrained_dir):
    assert check_pretrained_fits_data(pretrained_dir, data_like())["backbone"]["max_sequence_length"] == 64


@pytest.mark.parametrize("changes, fragments", [
    ({"tokenizer": "word", "framing": FRAMING_NONE, "tokenizer_sha256": None, "vocab_size": 20000},
     ["tokenized with word (vocabulary 20000)", f"expects sentencepiece {SPIECE_SHA256[:12]} (vocabulary 200)"]),
    ({"tokenizer_sha256": "f" * 64},
     [f"sentencepiece {'f' * 12} (vocabulary 200)", f"expects sentencepiece {SPIECE_SHA256[:12]}"]),
    ({"vocab_size": 201}, ["vocabulary of 201 ids", "has 200"]),
    ({"max_seq_length": 65}, ["max_seq_length 65", "max_sequence_length 64"]),
], ids=["another_tokenizer", "another_sentencepiece_model", "another_vocabulary", "longer_than_positions"])
def test_data_that_does_not_fit_the_pretrained_encoder_is_refused_naming_both(pretrained_dir, changes, fragments):
    with pytest.raises(UserError) as refusal:
        check_pretrained_fits_data(pretrained_dir, data_like(**changes))
    for fragment in fragments:
        assert fragment in str(refusal.value)
    assert pretrained_dir in str(refusal.value)


def test_resuming_with_another_init_from_is_refused_naming_it(tmp_path):
    def job(init_from):
        return load_job_config(None, {"train.data_dir": str(tmp_path / "prep"), "train.model_dir": str(tmp_path / "m"),
                                      "train.encoder": "albert", "train.init_from": init_from})

    started = job(str(tmp_path / "enc_a"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "_STAGE.json").write_text('{"stage": "train"}')
    (tmp_path / "m" / "config.json").write_text(started.to_json())
    assert check_model_dir(job(f"{tmp_path}/enc_a/")) == "resume"  # the same directory, spelled otherwise
    with pytest.raises(UserError, match="train.init_from was .*enc_a.*, now .*enc_b"):
        check_model_dir(job(str(tmp_path / "enc_b")))


@pytest.fixture(scope="module")
def pretrained_data(shared_corpora) -> str:
    """A tiny corpus preprocessed with the pretrained directory's tokenizer (`--pretrained DIR`); the
    directory is conftest's `pretrained_dir`, the reference fixture's Hugging Face checkpoint imported."""
    return shared_corpora["pretrained"]


@pytest.mark.slow
def test_an_imported_checkpoint_fine_tunes_at_the_fine_tuning_rate_exports_and_scores_raw_text(tmp_path, pretrained_dir, pretrained_data):
    args = ["--data-dir", pretrained_data, "--model-dir", str(tmp_path / "m"), "--encoder", "albert",
            "--init-from", pretrained_dir, "--epochs", "1", "--batch-size", "16"]
    metrics = trainer.run(args)

    on_disk = read_json(tmp_path / "m" / "metrics.json")
    assert on_disk["learning_rate"] == 3e-5 and on_disk["init_from"] == pretrained_dir
    assert metrics["export"].startswith(str(tmp_path / "m" / "export"))
    # The trained encoder is the pretrained one after a few small steps, not a fresh initialization.
    data = read_preprocessed(pretrained_data)
    model = trainer.build_model(choose_settings(cli.resolve_job(trainer.build_parser().parse_args(args)), data)[0],
                                data)
    model.load_weights(tmp_path / "m" / "checkpoints" / "epoch-001.weights.h5")
    trained = model.get_layer(index=1).backbone.token_embedding.embeddings.numpy()
    pretrained = load_backbone(pretrained_dir).token_embedding.embeddings.numpy()
    assert np.max(np.abs(trained - pretrained)) < 0.01 < np.max(np.abs(pretrained))
    # The export tokenizes raw text with the SentencePiece model inside it, in a process that
    # imports only tensorflow and tensorflow_text, and predicts what the trained model predicts.
    token_ids = tft.TFTransformOutput(pretrained_data).transform_raw_features(
        {features.TEXT: tf.constant(TEXTS)}, drop_unused_features=True)[features.TOKEN_IDS]
    served = serve_in_fresh_process(metrics["export"], TEXTS)
    np.testing.assert_allclose(served["probabilities"], model.predict(token_ids, verbose=0), atol=1e-5)
    # The scoring stage serves the same export over the raw corpus: every document scored.
    corpus = Path(pretrained_data).parent / "raw" / "corpus.jsonl"
    scored = run_cli("pipelines.score", "--model", str(tmp_path / "m"), "--input", str(corpus), "--id-field", "id",
                     "--output-dir", str(tmp_path / "scored"))
    assert scored.returncode == 0, scored.stderr[-3000:]
    summary = read_json(tmp_path / "scored" / "summary.json")
    assert summary["read"] == summary["scored"] == len(corpus.read_text().splitlines())
    assert summary["model_version"] == Path(metrics["export"]).name


@pytest.mark.slow
def test_init_from_on_data_of_another_tokenizer_is_refused_before_the_model_dir_is_written(
        tmp_path, pretrained_dir, multiclass_data):
    with pytest.raises(UserError, match=f"tokenized with word .* encoder in {pretrained_dir} expects sentencepiece"):
        trainer.run(["--data-dir", multiclass_data, "--model-dir", str(tmp_path / "m"), "--encoder", "albert",
                     "--init-from", pretrained_dir])
    assert not (tmp_path / "m").exists()
