"""What a finished training run leaves for people to read: metrics.json and plots/*.png."""

from __future__ import annotations

import json

from model import plots
from model.filesystem import join, write_text
from model.history import read_history

METRICS_FILE = "metrics.json"
PLOTS_DIR = "plots"


def write_metrics(model_dir: str, metrics: dict) -> str:
    return write_text(join(model_dir, METRICS_FILE), json.dumps(metrics, indent=2) + "\n")


def write_plots(model_dir: str, metrics: dict, multi_label: bool) -> list[str]:
    """The eval confusion matrix and, when history.csv has epochs, the training curves; their paths."""
    confusion_path = join(model_dir, PLOTS_DIR, "confusion_matrix.png")
    if multi_label:
        paths = [plots.plot_multilabel_confusion(metrics["confusion_matrix"], confusion_path)]
    else:
        paths = [plots.plot_confusion_matrix(metrics["confusion_matrix"], metrics["label_names"], confusion_path)]
    history = read_history(model_dir)
    if history:
        paths.append(plots.plot_training_curves(history, join(model_dir, PLOTS_DIR, "training_curves.png")))
    return paths
