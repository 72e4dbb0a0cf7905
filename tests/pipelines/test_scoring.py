"""FormatPrediction and its helpers, called directly on made-up model outputs (no pipeline)."""

from __future__ import annotations

import numpy as np
from apache_beam.ml.inference.base import PredictionResult

from pipelines.model_handler import ExportMetadata
from pipelines.scoring import FormatPrediction, _failed_batch_rejections, labels_over_threshold
from schemas import export_contract, predictions, rejections

NAMES = ("arts, culture", "science", "sports")


def metadata(multi_label: bool) -> ExportMetadata:
    return ExportMetadata(version="7", label_names=NAMES, multi_label=multi_label, threshold=0.5,
                          signatures={"longest": export_contract.DYNAMIC_SIGNATURE})


def model_outputs(probabilities, labels_output: bytes | None = None) -> dict:
    """One row of the export's signature outputs, as the handler passes them on."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    outputs = {export_contract.PROBABILITIES_OUTPUT: probabilities,
               export_contract.LABEL_OUTPUT: NAMES[int(probabilities.argmax())].encode(),
               export_contract.SCORE_OUTPUT: probabilities.max()}
    if labels_output is not None:
        outputs[export_contract.LABELS_OUTPUT] = labels_output
    return outputs


def format_row(export_metadata, labels, inference, kept=()) -> dict:
    key = ("d1", "in.jsonl:3", labels, kept)
    (row,) = FormatPrediction(export_metadata).process((key, PredictionResult("some text", inference)))
    return row


def test_a_single_label_row_holds_the_declared_columns_and_the_exports_version():
    row = format_row(metadata(False), ("science",), model_outputs([0.1, 0.7, 0.2]), kept=(("lang", "en"),))
    assert row == {predictions.ID: "d1", predictions.SOURCE: "in.jsonl:3", predictions.LABEL: "science",
                   predictions.SCORE: 0.7, predictions.PROBABILITIES: {"arts, culture": 0.1, "science": 0.7,
                                                                       "sports": 0.2},
                   predictions.MODEL_VERSION: "7", predictions.TRUE_LABEL: "science", "lang": "en"}


def test_a_multi_label_row_takes_its_labels_from_the_probabilities_not_the_joined_string():
    # The export's `labels` output joins names with "," and so garbles "arts, culture".
    inference = model_outputs([0.9, 0.2, 0.6], labels_output=b"arts, culture,sports")
    row = format_row(metadata(True), ("arts, culture", "sports"), inference)
    assert row[predictions.LABELS] == ["arts, culture", "sports"]
    assert row[predictions.TRUE_LABEL] == ["arts, culture", "sports"]


def test_an_unlabelled_document_has_no_true_label_in_either_task():
    assert format_row(metadata(False), (), model_outputs([0.1, 0.7, 0.2]))[predictions.TRUE_LABEL] is None
    assert format_row(metadata(True), (), model_outputs([0.1, 0.7, 0.2]))[predictions.TRUE_LABEL] is None


def test_labels_over_threshold_compare_in_float32_as_the_export_does():
    # float32(0.7) < 0.7 in float64: a float64 comparison would drop a label the export chose.
    assert labels_over_threshold(np.array([0.7, 0.69], dtype=np.float32), ["a", "b"], 0.7) == ["a"]
    assert labels_over_threshold([0.1, 0.2], ["a", "b"], 0.5) == []


def test_a_failed_model_call_rejects_every_document_of_its_batch():
    batch = [(("d1", "f:1", (), ()), "text one"), (("d2", "f:2", (), ()), "text two")]
    failed = list(_failed_batch_rejections((batch, ValueError("model exploded\nstack"))))
    assert [(r.reason, r.source, r.record, r.detail) for r in failed] == [
        (rejections.INFERENCE_FAILED, "f:1", "d1", "model call failed: model exploded"),
        (rejections.INFERENCE_FAILED, "f:2", "d2", "model call failed: model exploded")]
