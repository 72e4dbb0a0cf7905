"""The trainer with a solved n-gram path: solved before training, frozen through it, reported, exported."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from model import trainer
from model.automatic import choose_settings
from model.data import read_preprocessed
from model.export import latest_export
from model.ngram_logits import NGRAM_LAYER_NAME
from schemas import cli
from schemas import export_contract as contract
from tests.model.conftest import read_json


@pytest.mark.slow
def test_training_alone_a_solved_ngram_path_takes_one_epoch_that_leaves_it_as_solved(
        tmp_path, multiclass_data, tiny_job_file):
    metrics = trainer.run(["--config", tiny_job_file, "--data-dir", multiclass_data, "--model-dir", str(tmp_path / "m"),
                           "--encoder", "none"])

    assert metrics["automatic_choices"]["ngrams.fit"]["value"] == "solve"
    assert metrics["automatic_choices"]["train.epochs"]["value"] == metrics["epochs_trained"] == 1
    solved = metrics["ngrams"]["solved"]
    assert metrics["ngrams"]["fit"] == "solve" and solved["loss"] in ("logistic", "squared_hinge")
    # The trained model's eval accuracy is the solver's for the loss and C chosen: the epoch left the
    # weights as solved, and the solver saw the features the model computes.
    assert metrics["accuracy"] == pytest.approx(solved["eval_score"][solved["loss"]][str(solved["c"])], abs=1e-4)
    assert metrics["accuracy"] > metrics["majority_baseline_accuracy"] + 0.2
    assert read_json(tmp_path / "m" / "config.json")["ngrams"]["fit"] == "solve"

    texts = ["the team won the match in the final minute", "shares fell as the market closed lower"]
    served = tf.saved_model.load(latest_export(str(tmp_path / "m"))).signatures[contract.DYNAMIC_SIGNATURE](
        **{contract.TEXT_INPUT: tf.constant(texts)})
    assert np.allclose(served[contract.PROBABILITIES_OUTPUT].numpy().sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_a_solved_ngram_path_beside_an_encoder_stays_frozen_while_the_encoder_trains(
        tmp_path, multiclass_data, tiny_job_file):
    args = ["--config", tiny_job_file, "--data-dir", multiclass_data, "--model-dir", str(tmp_path / "m"),
            "--encoder", "bilstm", "--ngram-fit", "solve", "--epochs", "2", "--keep-checkpoints", "0"]
    metrics = trainer.run(args)
    assert metrics["ngrams"]["fit"] == "solve" and metrics["epochs_trained"] == 2

    data = read_preprocessed(multiclass_data)
    job = choose_settings(cli.resolve_job(trainer.build_parser().parse_args(args)), data)[0]
    weights = []
    for epoch in (1, 2):
        model = trainer.build_model(job, data)
        model.load_weights(tmp_path / "m" / "checkpoints" / f"epoch-{epoch:03d}.weights.h5")
        ngram_layer = model.get_layer(NGRAM_LAYER_NAME)
        encoder_weights = [w.numpy() for w in model.weights if not any(w is v for v in ngram_layer.weights)]
        weights.append(([w.numpy() for w in ngram_layer.weights], encoder_weights))
    (ngrams_1, encoder_1), (ngrams_2, encoder_2) = weights
    assert all(np.array_equal(a, b) for a, b in zip(ngrams_1, ngrams_2))
    assert np.any(ngrams_1[0] != 0)  # solved, not left at its zero start
    assert not all(np.array_equal(a, b) for a, b in zip(encoder_1, encoder_2))
