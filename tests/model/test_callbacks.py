"""The trainer's own callbacks, driven by hand (no training): checkpoint pruning, history.csv, time left."""

from __future__ import annotations

import logging
import math

import pytest
import tensorflow as tf

from model.callbacks import PruneEpochCheckpoints, TimeLeft
from model.history import HistoryWriter, read_history


@pytest.mark.parametrize("keep, kept", [(0, [8, 9, 10, 999, 1000]), (1, [1000]), (3, [10, 999, 1000])])
def test_checkpoint_pruning_orders_epochs_by_number_and_zero_keeps_all(tmp_path, keep, kept):
    for epoch in (8, 9, 10, 999, 1000):
        (tmp_path / f"epoch-{epoch:03d}.weights.h5").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a checkpoint")

    PruneEpochCheckpoints(str(tmp_path), keep).on_epoch_end(999)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"epoch-{epoch:03d}.weights.h5" for epoch in kept] + ["notes.txt"])


def test_history_of_a_resumed_run_follows_the_killed_runs_rows_on_any_filesystem():
    model_dir = "ram://history/m"  # where Keras' CSVLogger fails when training ends
    killed = HistoryWriter(model_dir)
    killed.on_train_begin()
    killed.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.2})
    killed.on_epoch_end(1, {"loss": 0.8, "val_loss": 1.0})

    resumed = HistoryWriter(model_dir)  # a new process, after the kill: epoch 1 is trained again
    resumed.on_train_begin()
    resumed.on_epoch_end(1, {"loss": 0.7, "val_loss": 0.9})
    resumed.on_epoch_end(2, {"loss": 0.6, "val_loss": 0.8, "learning_rate": 0.001})

    history = read_history(model_dir)
    assert history["loss"] == [1.0, 0.7, 0.6]  # the later row of epoch 1 wins
    assert history["val_loss"] == [1.2, 0.9, 0.8]
    assert all(math.isnan(v) for v in history["learning_rate"][:2]) and history["learning_rate"][2] == 0.001
    assert tf.io.gfile.listdir("ram://history/m") == ["history.csv"]  # no temporary file left


def test_read_history_of_a_model_dir_without_one_is_empty(tmp_path):
    assert read_history(str(tmp_path)) == {}


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_epoch_line_says_the_time_taken_and_left_at_the_mean_epoch_of_this_run(caplog):
    clock = FakeClock()
    time_left = TimeLeft(epochs=10, clock=clock)
    caplog.set_level(logging.INFO)
    time_left.on_train_begin()
    for epoch, seconds in ((4, 50.0), (5, 70.0)):  # resumed at epoch 5 of 10 (index 4)
        time_left.on_epoch_begin(epoch)
        clock.now += seconds
        time_left.on_epoch_end(epoch)
    assert caplog.messages == [
        "Epoch 5/10 done, 50 s into this run; about 4 min 10 s left for 5 more epochs.",
        "Epoch 6/10 done, 2 min 00 s into this run; about 4 min 00 s left for 4 more epochs.",
    ]
    time_left.on_epoch_begin(9)
    time_left.on_epoch_end(9)
    assert caplog.messages[-1] == "Epoch 10/10 done, 2 min 00 s into this run; the last epoch."
