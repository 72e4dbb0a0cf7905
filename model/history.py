"""history.csv: one row of logs per epoch, across resumed runs, on any filesystem.

Keras' CSVLogger cannot write to a non-local path (on train end it asks its `tf.io.gfile.GFile`
whether it is `closed`, which GFile does not say), so the trainer keeps its own: the file is a
few rows, rewritten whole after each epoch through a rename, so a kill mid-write keeps the
previous version.
"""

from __future__ import annotations

import csv
import io
import math

import keras
import tensorflow as tf

from model.filesystem import join, read_text, replace_text

HISTORY_FILE = "history.csv"
EPOCH = "epoch"  # 0-based, as Keras numbers epochs in callbacks


def read_history_rows(model_dir: str) -> list[dict[str, str]]:
    """The rows of MODEL_DIR/history.csv in file order ([] when there is none)."""
    path = join(model_dir, HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        return []
    return list(csv.DictReader(io.StringIO(read_text(path))))


def read_history(model_dir: str) -> dict[str, list[float]]:
    """history.csv (all epochs, across resumed runs) as {metric: values per epoch}.

    An epoch that a killed run logged but could not save is trained again on resume and logged
    twice; the later row wins. A value an epoch did not log reads as NaN.
    """
    rows = {int(row[EPOCH]): row for row in read_history_rows(model_dir)}
    epochs = [rows[epoch] for epoch in sorted(rows)]
    keys = [key for key in (epochs[0] if epochs else {}) if key != EPOCH]
    return {key: [float(row[key]) if row.get(key) else math.nan for row in epochs] for key in keys}


def write_history_rows(model_dir: str, rows: list[dict]) -> None:
    keys = sorted({key for row in rows for key in row} - {EPOCH})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[EPOCH, *keys], restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    replace_text(join(model_dir, HISTORY_FILE), text.getvalue())


class HistoryWriter(keras.callbacks.Callback):
    """Adds each finished epoch's logs to MODEL_DIR/history.csv, after the rows already there."""

    def __init__(self, model_dir: str):
        super().__init__()
        self._model_dir = model_dir
        self._rows: list[dict] = []

    def on_train_begin(self, logs=None):
        self._rows = read_history_rows(self._model_dir)

    def on_epoch_end(self, epoch, logs=None):
        row = {key: float(keras.ops.convert_to_numpy(value)) for key, value in (logs or {}).items()}
        self._rows.append({EPOCH: epoch, **row})
        write_history_rows(self._model_dir, self._rows)
