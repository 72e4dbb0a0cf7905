"""The middle of the scoring stage: documents → the model's predictions, one row per document.

No I/O here: ScoreDocuments runs the export through RunInference and FormatPrediction turns each
result into a row of the declared prediction schema (schemas/predictions.py), counting it into the
stage's progress (pipelines/progress.py).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference

from pipelines.documents import Document
from pipelines.formats import Rejection
from pipelines.length_sort import SortByLength, text_length
from pipelines.model_handler import ExportMetadata, SavedModelTextHandler, prediction_values, signature_for
from pipelines.progress import ProgressMeter, StageProgress
from schemas import config as config_lib
from schemas import export_contract, output_dirs, predictions, rejections

# The key RunInference carries beside each text: everything a prediction row needs besides the
# model's outputs. (id, source, labels, kept fields)
DocumentKey = tuple[str, str, tuple[str, ...], tuple[tuple[str, Any], ...]]


def _keyed_text(document: Document, id_from_source: bool) -> tuple[DocumentKey, str]:
    doc_id = document.source if id_from_source else document.id
    return (doc_id, document.source, document.labels, document.kept_fields), document.text


def _keyed_text_length(keyed_text: tuple[DocumentKey, str]) -> int:
    return text_length(keyed_text[1])


def labels_over_threshold(probabilities: Sequence[float], label_names: Sequence[str], threshold: float) -> list[str]:
    """Multi-label: the names whose probability reaches `threshold`, in label order.

    Compared in float32, as the export compares them, so the row's labels are the ones the
    export's own `labels` output joins (which a label containing the separator would garble).
    """
    chosen = np.asarray(probabilities, dtype=np.float32) >= np.float32(threshold)
    return [name for name, is_chosen in zip(label_names, chosen) if is_chosen]


class FormatPrediction(beam.DoFn):
    """(key, PredictionResult) → one prediction row (a dict in the declared prediction schema).

    A multi-label model's `labels` and `true_label` are lists; a single-label model's
    `true_label` is the document's one label. Unlabelled documents get `true_label` None.
    In a pipeline each row is counted as scored into `progress`.
    """

    def __init__(self, export_metadata: ExportMetadata, progress: StageProgress | None = None):
        self._metadata = export_metadata
        self._progress = progress
        self._meter: ProgressMeter | None = None

    def setup(self):
        if self._progress is not None:
            self._meter = self._progress.meter()

    def finish_bundle(self):
        if self._meter is not None:
            self._meter.finish()

    def process(self, keyed_result: tuple[DocumentKey, PredictionResult]) -> Iterator[dict[str, Any]]:
        (doc_id, source, labels, kept_fields), result = keyed_result
        if self._meter is not None:
            self._meter.add_scored()
        metadata = self._metadata
        values = prediction_values(result.inference)
        probabilities = values[export_contract.PROBABILITIES_OUTPUT]
        row = {
            predictions.ID: doc_id,
            predictions.SOURCE: source,
            predictions.LABEL: values[export_contract.LABEL_OUTPUT],
            predictions.SCORE: round(float(values[export_contract.SCORE_OUTPUT]), 6),
            predictions.PROBABILITIES: {name: round(float(p), 6)
                                        for name, p in zip(metadata.label_names, probabilities)},
            predictions.MODEL_VERSION: metadata.version,
        }
        if metadata.multi_label:
            row[predictions.LABELS] = labels_over_threshold(probabilities, metadata.label_names, metadata.threshold)
            row[predictions.TRUE_LABEL] = list(labels) if labels else None
        else:
            row[predictions.TRUE_LABEL] = labels[0] if labels else None
        row.update(dict(kept_fields))
        yield row


def _failed_batch_rejections(failure) -> Iterator[Rejection]:
    """RunInference's dead letters are (batch of (key, text), exception): one rejection per document."""
    batch, error = failure
    detail = f"model call failed: {str(error).splitlines()[0][:300] if str(error) else type(error).__name__}"
    for (doc_id, source, _, _), _ in batch:
        yield Rejection(rejections.INFERENCE_FAILED, source, detail, doc_id)


class ScoreDocuments(beam.PTransform):
    """Documents → prediction rows (main) and inference failures (`failed`), ids kept with each text.

    With `padding="longest"` the documents reach RunInference sorted by length in windows of
    `sort_window_batches` batches, and the export pads each batch to its longest document; with
    `"max_length"` they arrive in their own order and every batch is padded to max_seq_length.
    Each prediction is counted into `progress`: the reader's, so that the line shows documents
    scored beside the fraction read (without it, a meter of its own, without a time left).
    """

    def __init__(self, export_dir: str, export_metadata: ExportMetadata, batch_size: int, id_from_source: bool,
                 padding: str = config_lib.PADDING_LONGEST,
                 sort_window_batches: int = config_lib.ScoreConfig.sort_window_batches,
                 progress: StageProgress | None = None):
        super().__init__()
        self._progress = progress or StageProgress(output_dirs.SCORE, total_bytes=None)
        self._export_dir = export_dir
        self._metadata = export_metadata
        self._batch_size = batch_size
        self._id_from_source = id_from_source
        self._padding = padding
        self._signature = signature_for(export_metadata, padding)
        self._sort_window = sort_window_batches * batch_size  # whole batches, so none straddles two windows

    def expand(self, documents):
        handler = KeyedModelHandler(SavedModelTextHandler(self._export_dir, self._batch_size, self._signature))
        keyed = documents | "KeyByDocument" >> beam.Map(_keyed_text, id_from_source=self._id_from_source)
        if self._padding == config_lib.PADDING_LONGEST:
            keyed = keyed | "SortByLength" >> SortByLength(self._sort_window, _keyed_text_length)
        results, dead_letters = keyed | "RunInference" >> RunInference(handler).with_exception_handling()
        rows = results | "FormatPrediction" >> beam.ParDo(FormatPrediction(self._metadata, self._progress))
        failed = dead_letters.failed_inferences | "ToRejections" >> beam.FlatMap(_failed_batch_rejections)
        return {"predictions": rows, "failed": failed}
