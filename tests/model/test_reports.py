"""metrics.json and the plots of a run, written where the model directory is, on any filesystem."""

from __future__ import annotations

import json

import tensorflow as tf

from model.filesystem import move_directory, write_text
from model.reports import write_metrics, write_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SINGLE_LABEL_METRICS = {"confusion_matrix": [[5, 1], [2, 7]], "label_names": ["neg", "pos"], "accuracy": 0.8}
HISTORY_CSV = "epoch,loss,val_loss\n0,1.0,1.1\n1,0.5,0.7\n"


def read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def test_plots_and_metrics_of_a_non_local_model_dir_go_there_not_to_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # pathlib would create ./ram:/... here
    model_dir = "ram://reports/single"
    write_text(f"{model_dir}/history.csv", HISTORY_CSV)

    paths = write_plots(model_dir, SINGLE_LABEL_METRICS, multi_label=False)
    write_metrics(model_dir, SINGLE_LABEL_METRICS)

    assert paths == [f"{model_dir}/plots/confusion_matrix.png", f"{model_dir}/plots/training_curves.png"]
    assert all(read_bytes(path).startswith(PNG_SIGNATURE) for path in paths)
    assert json.loads(read_bytes(f"{model_dir}/metrics.json")) == SINGLE_LABEL_METRICS
    assert list(tmp_path.iterdir()) == []


def test_multilabel_plots_without_history_write_only_the_per_label_confusion():
    metrics = {"confusion_matrix": {"a": [[3, 1], [0, 2]], "b": [[4, 0], [1, 1]]}}
    paths = write_plots("ram://reports/multi", metrics, multi_label=True)
    assert paths == ["ram://reports/multi/plots/confusion_matrix.png"]
    assert read_bytes(paths[0]).startswith(PNG_SIGNATURE)


def test_moving_a_directory_carries_every_file_even_where_rename_moves_only_the_folder():
    write_text("ram://move/staging/saved_model.pb", "graph")
    write_text("ram://move/staging/assets.extra/export.json", "{}")

    move_directory("ram://move/staging", "ram://move/7")

    assert sorted(tf.io.gfile.listdir("ram://move")) == ["7"]
    assert read_bytes("ram://move/7/saved_model.pb") == b"graph"
    assert read_bytes("ram://move/7/assets.extra/export.json") == b"{}"
    assert not tf.io.gfile.exists("ram://move/staging/saved_model.pb")
