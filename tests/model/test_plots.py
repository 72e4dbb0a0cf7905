"""The plot functions write readable PNGs, sized for the number of classes, without pyplot."""

import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from model.plots import (metric_families, plot_confusion_matrix, plot_multilabel_confusion,
                         plot_training_curves, row_normalized)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PIXELS = 200

HISTORY = {
    "loss": [1.10, 0.80, 0.62, 0.55, 0.51],
    "accuracy": [0.52, 0.68, 0.77, 0.81, 0.83],
    "val_loss": [1.00, 0.78, 0.66, 0.64, 0.67],
    "val_accuracy": [0.55, 0.70, 0.75, 0.77, 0.76],
    "learning_rate": [1e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4],
}


def read_png(path):
    """The image at path as an array [height, width, channels], after checking the PNG signature."""
    with open(path, "rb") as stream:
        assert stream.read(8) == PNG_SIGNATURE
    return matplotlib.image.imread(path)


def sample_confusion(num_classes, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, size=(num_classes, num_classes))
    counts[np.diag_indices(num_classes)] += 40
    return counts


@pytest.fixture(scope="module")
def confusion_pngs(tmp_path_factory):
    """{class count: (returned path, written path)} for 2, 4 and 20 classes, rendered once."""
    directory = tmp_path_factory.mktemp("confusion")
    pngs = {}
    for num_classes in (2, 4, 20):
        names = [f"class number {i}" for i in range(num_classes)]
        path = directory / f"confusion_{num_classes}.png"
        pngs[num_classes] = (plot_confusion_matrix(sample_confusion(num_classes), names, path), path)
    return pngs


@pytest.mark.parametrize("num_classes", [2, 4, 20])
def test_confusion_matrix_writes_a_readable_png(confusion_pngs, num_classes):
    returned, path = confusion_pngs[num_classes]
    assert returned == str(path)
    image = read_png(path)
    assert image.shape[0] > MIN_PIXELS and image.shape[1] > MIN_PIXELS


def test_confusion_matrix_figure_grows_with_class_count(confusion_pngs):
    small = read_png(confusion_pngs[2][1])
    large = read_png(confusion_pngs[20][1])
    assert large.shape[0] > 1.5 * small.shape[0]


def test_confusion_matrix_accepts_nested_lists_rows_without_examples_and_long_names(tmp_path):
    matrix = [[5, 1, 0], [0, 0, 0], [2, 0, 7]]
    names = ["short", "a label name far longer than any tick should show", "x"]
    read_png(plot_confusion_matrix(matrix, names, tmp_path / "nested" / "dir" / "cm.png"))


def test_confusion_matrix_rejects_shape_that_does_not_match_names(tmp_path):
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        plot_confusion_matrix(np.ones((2, 2), dtype=int), ["a", "b", "c"], tmp_path / "cm.png")


@pytest.mark.parametrize("num_labels", [2, 4, 20])
def test_multilabel_confusion_writes_a_panel_grid_png(tmp_path, num_labels):
    matrices = {f"label_{i}": [[50 + i, 4], [3, 20 + i]] for i in range(num_labels)}
    path = plot_multilabel_confusion(matrices, tmp_path / f"multilabel_{num_labels}.png")
    image = read_png(path)
    assert image.shape[0] > MIN_PIXELS and image.shape[1] > MIN_PIXELS


def test_multilabel_confusion_rejects_matrices_that_are_not_two_by_two(tmp_path):
    with pytest.raises(ValueError, match="label 'a'"):
        plot_multilabel_confusion({"a": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}, tmp_path / "ml.png")


def test_training_curves_write_a_png_with_learning_rate_panel(tmp_path):
    path = plot_training_curves(HISTORY, tmp_path / "curves.png")
    image = read_png(path)
    assert image.shape[0] > MIN_PIXELS and image.shape[1] > MIN_PIXELS


def test_training_curves_handle_train_only_eval_only_and_long_runs(tmp_path):
    epochs = np.arange(1, 121)
    history = {"loss": list(1 / epochs), "val_auc": list(1 - 1 / epochs), "lr": [0.01] * 120}
    read_png(plot_training_curves(history, tmp_path / "long.png"))


def test_training_curves_need_some_values(tmp_path):
    with pytest.raises(ValueError, match="no metric values"):
        plot_training_curves({"learning_rate": [0.1]}, tmp_path / "empty.png")


def test_metric_families_pair_train_with_eval_in_display_order():
    history = {"val_auc": [0.7], "auc": [0.8], "accuracy": [0.6], "val_loss": [0.9], "loss": [1.0],
               "learning_rate": [0.1], "val_precision": [0.5]}
    assert metric_families(history) == {
        "loss": ([1.0], [0.9]),
        "accuracy": ([0.6], None),
        "auc": ([0.8], [0.7]),
        "precision": (None, [0.5]),
    }


def test_row_normalized_gives_recall_shares_and_zero_for_empty_rows():
    shares = row_normalized(np.array([[3, 1], [0, 0]]))
    assert shares.tolist() == [[0.75, 0.25], [0.0, 0.0]]


def test_importing_plots_leaves_pyplot_and_the_backend_alone():
    code = ("import sys, matplotlib; before = matplotlib.rcParams._get_backend_or_none(); "
            "import model.plots; "
            "assert 'matplotlib.pyplot' not in sys.modules; "
            "assert matplotlib.rcParams._get_backend_or_none() == before")
    subprocess.run([sys.executable, "-c", code], check=True)
