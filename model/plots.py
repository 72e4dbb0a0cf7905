"""PNG pictures of eval results: confusion matrices and training curves.

Uses matplotlib's object API (``Figure`` + the Agg canvas), so importing this module neither
imports ``pyplot`` nor changes the global backend, and nothing needs a display.

Conventions: confusion matrices have rows = true label, columns = predicted label; cell colour is
the row-normalized share (recall on the diagonal) and the cell text is the absolute count.
Training-curve epochs are numbered from 1. Every function writes a PNG (creating missing parent
folders) and returns the path it wrote, as a ``str``; paths may be on any filesystem TensorFlow
knows (gs://...), since the PNG is rendered in memory and written with ``tf.io.gfile``.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from model.filesystem import write_bytes

DPI = 120
COLOR_MAP = "Blues"
TRAIN_COLOR = "#1f77b4"
EVAL_COLOR = "#d62728"
LEARNING_RATE_KEYS = ("learning_rate", "lr")
MAX_TICK_LABEL_CHARS = 18
ACRONYMS = {"auc", "prc", "roc", "mse", "mae", "rmse", "f1", "lr", "mlm", "sop"}


def plot_confusion_matrix(matrix, label_names: Sequence[str], path,
                          title: str = "Confusion matrix (eval)") -> str:
    """Heatmap of a single-label confusion matrix [C, C] (rows = true, columns = predicted).

    Colour is the row-normalized share, so the diagonal reads as per-class recall; each cell
    shows its absolute count (and the share, while there is room). Sized for up to ~20 classes.
    """
    counts = _as_count_matrix(matrix)
    names = [str(name) for name in label_names]
    if counts.shape != (len(names), len(names)):
        raise ValueError(f"matrix must have shape ({len(names)}, {len(names)}) to match label_names, "
                         f"received shape {counts.shape}")
    num_classes = len(names)
    side = float(np.clip(2.2 + 0.48 * num_classes, 4.6, 13.0))
    figure = _new_figure((side + 1.2, side))
    axes = figure.add_subplot()
    image = _draw_count_heatmap(axes, counts, font_size=_cell_font_size(num_classes),
                                with_share=num_classes <= 8)
    _label_matrix_axes(axes, names, tick_font_size=_tick_font_size(num_classes))
    colorbar = figure.colorbar(image, ax=axes, fraction=0.32 / side, aspect=max(20.0, 3.0 * side),
                               pad=0.03)
    colorbar.set_label("Share of true label (recall on diagonal)")
    axes.set_title(f"{title}\n{_accuracy_caption(counts)}", fontsize=12)
    return _save(figure, path)


def plot_multilabel_confusion(per_label_matrices: Mapping[str, Sequence[Sequence[int]]], path,
                              title: str = "Per-label confusion (eval)") -> str:
    """A grid of small 2x2 panels, one per label, each ``[[tn, fp], [fn, tp]]``.

    Rows = true (absent, present), columns = predicted (absent, present); colour is the
    row-normalized share and the cell text the count. Takes the ``confusion_matrix`` dict that
    ``classification_metrics(..., multi_label=True)`` returns.
    """
    if not per_label_matrices:
        raise ValueError("per_label_matrices must hold at least one label")
    matrices = {str(name): _as_count_matrix(matrix) for name, matrix in per_label_matrices.items()}
    for name, counts in matrices.items():
        if counts.shape != (2, 2):
            raise ValueError(f"matrix of label {name!r} must have shape (2, 2) as [[tn, fp], [fn, tp]], "
                             f"received shape {counts.shape}")
    num_rows, num_columns = _balanced_grid(len(matrices), max_columns=5)
    figure = _new_figure((2.5 * num_columns + 1.0, 2.5 * num_rows + 0.8))
    grid = figure.subplots(num_rows, num_columns, squeeze=False)
    image = None
    for index, (name, counts) in enumerate(matrices.items()):
        axes = grid[index // num_columns][index % num_columns]
        image = _draw_count_heatmap(axes, counts, font_size=10, with_share=True)
        _label_binary_panel(axes, name, show_true=index % num_columns == 0,
                            show_predicted=index >= len(matrices) - num_columns)
    for index in range(len(matrices), num_rows * num_columns):
        grid[index // num_columns][index % num_columns].set_visible(False)
    colorbar = figure.colorbar(image, ax=grid, shrink=min(1.0, 0.45 + 0.25 * num_rows), pad=0.02)
    colorbar.set_label("Share of true row")
    figure.suptitle(f"{title}\nrows = true, columns = predicted", fontsize=12)
    return _save(figure, path)


def plot_training_curves(history: Mapping[str, Sequence[float]], path,
                         title: str = "Training curves", x_label: str = "Epoch") -> str:
    """One panel per metric family, train (``x``) against eval (``val_x``), by epoch from 1
    (``x_label`` names what a history row is).

    Keras ``History.history`` fits as is. Loss comes first, then accuracy, then other families
    alphabetically; a ``learning_rate`` (or ``lr``) key gets its own last panel, log-scaled when
    it spans a factor of 10 or more. The best eval epoch of each family is marked.
    """
    families = metric_families(history)
    if not families:
        raise ValueError("history holds no metric values")
    panels = list(families.items())
    learning_rate = _learning_rate_series(history)
    num_panels = len(panels) + (learning_rate is not None)
    num_rows, num_columns = _balanced_grid(num_panels, max_columns=3)
    figure = _new_figure((4.6 * num_columns, 3.6 * num_rows + 0.4))
    grid = figure.subplots(num_rows, num_columns, squeeze=False)
    all_axes = [axes for row in grid for axes in row]
    for axes, (family, (train, evaluation)) in zip(all_axes, panels):
        _draw_metric_panel(axes, family, train, evaluation, x_label)
    if learning_rate is not None:
        _draw_learning_rate_panel(all_axes[len(panels)], learning_rate, x_label)
    for axes in all_axes[num_panels:]:
        axes.set_visible(False)
    figure.suptitle(title, fontsize=13)
    return _save(figure, path)


def metric_families(history: Mapping[str, Sequence[float]]) -> dict[str, tuple[list | None, list | None]]:
    """Pairs ``x`` with ``val_x``: {family: (train values or None, eval values or None)}.

    Ordered loss, accuracy, then the rest alphabetically; learning-rate keys are left out.
    """
    families: dict[str, tuple[list | None, list | None]] = {}
    for key in history:
        family = key[len("val_"):] if key.startswith("val_") else key
        if family in LEARNING_RATE_KEYS or family in families or not _has_values(history, key):
            continue
        train = _float_list(history.get(family)) if _has_values(history, family) else None
        evaluation = (_float_list(history.get(f"val_{family}"))
                      if _has_values(history, f"val_{family}") else None)
        families[family] = (train, evaluation)
    return dict(sorted(families.items(), key=lambda item: _family_order(item[0])))


# --- confusion-matrix drawing -------------------------------------------------------------------

def row_normalized(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (0.0 for rows without examples)."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.zeros_like(counts)
    np.divide(counts, totals, out=shares, where=totals != 0)
    return shares


def _draw_count_heatmap(axes, counts: np.ndarray, font_size: float, with_share: bool):
    shares = row_normalized(counts)
    image = axes.imshow(shares, cmap=COLOR_MAP, vmin=0.0, vmax=1.0, aspect="equal")
    for (row, column), count in np.ndenumerate(counts):
        text = f"{count:d}"
        if with_share and counts[row].sum() > 0:
            text += f"\n{shares[row, column]:.0%}"
        axes.text(column, row, text, ha="center", va="center", fontsize=font_size,
                  color="white" if shares[row, column] > 0.55 else "#222222")
    cell_edges = np.arange(counts.shape[0] + 1) - 0.5  # white separators between cells
    axes.hlines(cell_edges, -0.5, counts.shape[1] - 0.5, colors="white", linewidth=1.0)
    axes.vlines(cell_edges, -0.5, counts.shape[0] - 0.5, colors="white", linewidth=1.0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    return image


def _label_matrix_axes(axes, names: list[str], tick_font_size: float) -> None:
    short_names = [_shortened(name) for name in names]
    if len(names) <= 4 and max(map(len, short_names)) <= 10:
        axes.set_xticks(np.arange(len(names)), labels=short_names, fontsize=tick_font_size)
    else:
        axes.set_xticks(np.arange(len(names)), labels=short_names, rotation=45, ha="right",
                        rotation_mode="anchor", fontsize=tick_font_size)
    axes.set_yticks(np.arange(len(names)), labels=short_names, fontsize=tick_font_size)
    axes.set_xlabel("Predicted label", fontsize=11)
    axes.set_ylabel("True label", fontsize=11)


def _label_binary_panel(axes, name: str, show_true: bool, show_predicted: bool) -> None:
    """Title every panel; name the axes only on the grid's left column and bottom panels."""
    axes.set_title(_shortened(name, 24), fontsize=10)
    axes.set_xticks([0, 1], labels=["absent", "present"] if show_predicted else [], fontsize=8)
    axes.set_yticks([0, 1], labels=["absent", "present"] if show_true else [], fontsize=8,
                    rotation=90, va="center")
    axes.tick_params(length=0)
    if show_predicted:
        axes.set_xlabel("Predicted", fontsize=9)
    if show_true:
        axes.set_ylabel("True", fontsize=9)


def _accuracy_caption(counts: np.ndarray) -> str:
    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else 0.0
    return f"n = {total:,}   accuracy = {accuracy:.1%}"


def _cell_font_size(num_classes: int) -> float:
    return float(np.clip(14.0 - 0.45 * num_classes, 7.0, 12.0))


def _tick_font_size(num_classes: int) -> float:
    return float(np.clip(12.0 - 0.2 * num_classes, 8.0, 10.0))


def _shortened(name: str, max_chars: int = MAX_TICK_LABEL_CHARS) -> str:
    return name if len(name) <= max_chars else name[:max_chars - 1] + "\u2026"


def _as_count_matrix(matrix) -> np.ndarray:
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"a confusion matrix must be square, received shape {counts.shape}")
    if not np.issubdtype(counts.dtype, np.number) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise ValueError("a confusion matrix must hold non-negative whole counts")
    return counts.astype(np.int64)


# --- training-curve drawing ---------------------------------------------------------------------

def _draw_metric_panel(axes, family: str, train: list | None, evaluation: list | None, x_label: str) -> None:
    for values, label, color in ((train, "train", TRAIN_COLOR), (evaluation, "eval", EVAL_COLOR)):
        if values is not None:
            _draw_series(axes, values, label, color)
    if evaluation is not None:
        _mark_best_epoch(axes, evaluation, lower_is_better=_lower_is_better(family))
    axes.set_title(_pretty_name(family), fontsize=11)
    _style_epoch_axes(axes, x_label)
    axes.legend(fontsize=9, loc="best", framealpha=0.9)


def _draw_learning_rate_panel(axes, values: list[float], x_label: str) -> None:
    _draw_series(axes, values, "learning rate", "#2ca02c", drawstyle="steps-post")
    positive = [value for value in values if value > 0]
    if len(positive) == len(values) and max(positive) / min(positive) >= 10:
        axes.set_yscale("log")
    else:
        axes.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    axes.set_title("Learning rate", fontsize=11)
    _style_epoch_axes(axes, x_label)


def _draw_series(axes, values: list[float], label: str, color: str, drawstyle: str = "default") -> None:
    epochs = np.arange(1, len(values) + 1)
    axes.plot(epochs, values, label=label, color=color, linewidth=1.8, marker="o",
              markersize=4 if len(values) <= 30 else 2.5, markevery=max(1, len(values) // 40),
              drawstyle=drawstyle)


def _mark_best_epoch(axes, values: list[float], lower_is_better: bool) -> None:
    finite = np.where(np.isfinite(values), values, np.inf if lower_is_better else -np.inf)
    if not np.any(np.isfinite(finite)):
        return
    best = int(np.argmin(finite) if lower_is_better else np.argmax(finite))
    axes.plot(best + 1, values[best], marker="*", markersize=13, color=EVAL_COLOR,
              markeredgecolor="black", markeredgewidth=0.6, linestyle="none",
              label=f"best eval {values[best]:.4g} @ {best + 1}", zorder=5)


def _style_epoch_axes(axes, x_label: str) -> None:
    axes.set_xlabel(x_label)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.35, linewidth=0.7)
    axes.spines[["top", "right"]].set_visible(False)


def _learning_rate_series(history: Mapping[str, Sequence[float]]) -> list[float] | None:
    for key in LEARNING_RATE_KEYS:
        if _has_values(history, key):
            return _float_list(history[key])
    return None


def _family_order(family: str) -> tuple[int, str]:
    rank = {"loss": 0, "accuracy": 1}.get(family, 2)
    return rank, family


def _lower_is_better(family: str) -> bool:
    return any(word in family for word in ("loss", "error", "crossentropy", "mse", "mae"))


def _pretty_name(family: str) -> str:
    words = family.split("_")
    words = [word.upper() if word in ACRONYMS else word for word in words]
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def _has_values(history: Mapping[str, Sequence[float]], key: str) -> bool:
    values = history.get(key)
    return values is not None and len(values) > 0


def _float_list(values: Sequence[float]) -> list[float]:
    return [float("nan") if value is None else float(value) for value in values]


def _balanced_grid(num_panels: int, max_columns: int) -> tuple[int, int]:
    """(rows, columns) with at most ``max_columns`` columns and rows filled as evenly as possible."""
    num_rows = math.ceil(num_panels / max_columns)
    return num_rows, math.ceil(num_panels / num_rows)


# --- output -------------------------------------------------------------------------------------

def _new_figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path) -> str:
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=DPI, facecolor="white")
    return write_bytes(os.fspath(path), png.getvalue())
