"""Scoring stage: documents + an exported model → predictions, with every document accounted for.

    python -m pipelines.score --model out/model --input 'new/*.jsonl' --output-dir out/scored

Writes to the output directory: predictions-*.{jsonl,parquet,csv} (id, label, score,
probabilities, model_version, ...), rejected/ (JSON Lines with reason and source), summary.json
(read == scored + rejected, per-reason counts, model version, wall time, docs/s),
evaluation.json when the documents carry labels, and config.json. See README.md for every flag.
"""

from __future__ import annotations

from schemas.runtime_defaults import apply_tensorflow_defaults

apply_tensorflow_defaults()  # before TensorFlow loads: it reads them once

import csv
import functools
import io
import json
import logging
import os
import time
from typing import Any, Iterator, Sequence

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from pipelines import cli, outputs
from pipelines.documents import Document
from pipelines.formats import Rejection
from pipelines.io import ReadCorpus, WriteRejected
from pipelines.length_sort import SortByLength, text_length
from pipelines.model_handler import (SavedModelTextHandler, prediction_values, read_export_metadata, resolve_export,
                                     signature_for)
from pipelines.options import make_pipeline
from pipelines.transforms import CountRejections, ValidateDocuments
from schemas import config as config_lib
from schemas import features, predictions, rejections
from schemas.errors import UserError

_PARTIAL_SUMMARY = "summary.partial.json"


def _keyed_text(document: Document, id_from_source: bool) -> tuple[tuple, str]:
    # The key carries everything the prediction row needs besides the model's outputs.
    doc_id = document.source if id_from_source else document.id
    return (doc_id, document.source, document.labels, document.kept_fields), document.text


def _keyed_text_length(keyed_text: tuple[tuple, str]) -> int:
    return text_length(keyed_text[1])


class FormatPrediction(beam.DoFn):
    """(key, PredictionResult) → one prediction row (a dict in the declared prediction schema)."""

    def __init__(self, model_version: str, label_names: list[str], multi_label: bool, label_separator: str):
        self._model_version = model_version
        self._label_names = label_names
        self._multi_label = multi_label
        self._label_separator = label_separator

    def process(self, keyed_result) -> Iterator[dict[str, Any]]:
        (doc_id, _, labels, kept_fields), result = keyed_result
        values = prediction_values(result.inference)
        row = {
            predictions.ID: doc_id,
            predictions.LABEL: values["label"],
            predictions.SCORE: round(float(values["score"]), 6),
            predictions.PROBABILITIES: {name: round(float(p), 6)
                                        for name, p in zip(self._label_names, values["probabilities"])},
            predictions.MODEL_VERSION: self._model_version,
            predictions.TRUE_LABEL: self._label_separator.join(labels) if labels else None,
        }
        if self._multi_label:
            row[predictions.LABELS] = [label for label in values["labels"].split(",") if label]
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
    """

    def __init__(self, export_dir: str, export_metadata: dict, batch_size: int, id_from_source: bool,
                 label_separator: str, padding: str = config_lib.PADDING_LONGEST,
                 sort_window_batches: int = config_lib.ScoreConfig.sort_window_batches):
        super().__init__()
        self._export_dir = export_dir
        self._metadata = export_metadata
        self._batch_size = batch_size
        self._id_from_source = id_from_source
        self._label_separator = label_separator
        self._padding = padding
        self._signature = signature_for(export_metadata, padding)
        self._sort_window = sort_window_batches * batch_size  # whole batches, so none straddles two windows

    def expand(self, documents):
        handler = KeyedModelHandler(SavedModelTextHandler(self._export_dir, self._batch_size, self._signature))
        keyed = documents | "KeyByDocument" >> beam.Map(_keyed_text, id_from_source=self._id_from_source)
        if self._padding == config_lib.PADDING_LONGEST:
            keyed = keyed | "SortByLength" >> SortByLength(self._sort_window, _keyed_text_length)
        results, dead_letters = keyed | "RunInference" >> RunInference(handler).with_exception_handling()
        rows = results | "FormatPrediction" >> beam.ParDo(FormatPrediction(
            os.path.basename(self._export_dir.rstrip("/")), self._metadata["label_names"],
            self._metadata["multi_label"], self._label_separator))
        failed = dead_letters.failed_inferences | "ToRejections" >> beam.FlatMap(_failed_batch_rejections)
        return {"predictions": rows, "failed": failed}


def _csv_line(row: dict, columns: list[str]) -> str:
    buffer = io.StringIO()
    values = [json.dumps(row.get(c), ensure_ascii=False) if isinstance(row.get(c), (dict, list)) else row.get(c)
              for c in columns]
    csv.writer(buffer, lineterminator="").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


class WritePredictions(beam.PTransform):
    """Prediction rows → sharded predictions-*.jsonl / .parquet / .csv in `output_dir`."""

    def __init__(self, output_dir: str, output_format: str, multi_label: bool, keep_fields: tuple[str, ...],
                 num_shards: int):
        super().__init__()
        self._prefix = FileSystems.join(output_dir, predictions.PREDICTIONS_PREFIX)
        self._format = output_format
        self._schema = predictions.prediction_arrow_schema(multi_label, keep_fields)
        self._num_shards = num_shards

    def expand(self, rows):
        columns = self._schema.names
        if self._format == "jsonl":
            return (rows
                    | "ToJson" >> beam.Map(lambda row: json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False))
                    | "WriteJsonLines" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl",
                                                              num_shards=self._num_shards))
        if self._format == "csv":
            return (rows
                    | "ToCsv" >> beam.Map(_csv_line, columns=columns)
                    | "WriteCsv" >> beam.io.WriteToText(self._prefix, file_name_suffix=".csv",
                                                        header=",".join(columns), num_shards=self._num_shards))
        return (rows
                | "ToParquetRow" >> beam.Map(_parquet_row, columns=columns)
                | "WriteParquet" >> beam.io.WriteToParquet(self._prefix, self._schema, file_name_suffix=".parquet",
                                                           num_shards=self._num_shards))


def _parquet_row(row: dict, columns: list[str]) -> dict:
    row = {c: row.get(c) for c in columns}
    row[predictions.PROBABILITIES] = list(row[predictions.PROBABILITIES].items())
    return row


def _label_pairs(row: dict) -> Iterator[tuple[str, str]]:
    if row[predictions.TRUE_LABEL] is not None:
        yield row[predictions.TRUE_LABEL], row[predictions.LABEL]


def _summarize(_, read, scored, rejected_by_reason, label_pairs, model_version) -> str:
    rejected = sum(rejected_by_reason.values())
    return json.dumps({"read": read, "scored": scored, "rejected": rejected,
                       "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
                       "model_version": model_version, "label_pairs": label_pairs})


def build_pipeline(pipeline: beam.Pipeline, job: config_lib.JobConfig, export_dir: str, export_metadata: dict,
                   output_dir: str) -> None:
    """The stage's data flow, top to bottom. Writes everything under `output_dir`."""
    corpus, settings = job.corpus, job.score
    records = pipeline | "ReadCorpus" >> ReadCorpus(corpus)
    validated = records | "ValidateDocuments" >> ValidateDocuments(corpus, require_label=False,
                                                                   keep_fields=settings.keep_fields)
    scored = validated.documents | "ScoreDocuments" >> ScoreDocuments(
        export_dir, export_metadata, settings.batch_size, id_from_source=corpus.id_field is None,
        label_separator=corpus.label_separator, padding=settings.padding,
        sort_window_batches=settings.sort_window_batches)
    rejected = (
        (validated.rejected, scored["failed"])
        | "AllRejected" >> beam.Flatten()
        | "CountRejections" >> CountRejections("score")
    )
    _ = rejected | "WriteRejected" >> WriteRejected(output_dir)
    _ = scored["predictions"] | "WritePredictions" >> WritePredictions(
        output_dir, settings.output_format, export_metadata["multi_label"], settings.keep_fields, settings.num_shards)

    rejected_by_reason = (rejected
                          | "Reasons" >> beam.Map(lambda r: r.reason)
                          | "CountReasons" >> beam.combiners.Count.PerElement()
                          | "ReasonsToDict" >> beam.combiners.ToDict())
    label_pairs = (scored["predictions"]
                   | "LabelPairs" >> beam.FlatMap(_label_pairs)
                   | "CountPairs" >> beam.combiners.Count.PerElement()
                   | "PairsToList" >> beam.combiners.ToList())
    _ = (
        pipeline
        | "Start" >> beam.Create([None])
        | "Summarize" >> beam.Map(
            _summarize,
            read=pvalue.AsSingleton(records | "CountRead" >> beam.combiners.Count.Globally()),
            scored=pvalue.AsSingleton(scored["predictions"] | "CountScored" >> beam.combiners.Count.Globally()),
            rejected_by_reason=pvalue.AsSingleton(rejected_by_reason),
            label_pairs=pvalue.AsSingleton(label_pairs),
            model_version=os.path.basename(export_dir.rstrip("/")))
        | "WriteSummary" >> beam.io.WriteToText(FileSystems.join(output_dir, _PARTIAL_SUMMARY), num_shards=1,
                                                shard_name_template="")
    )


def evaluation_summary(label_pairs: list, label_names: list[str]) -> dict | None:
    """Accuracy and per-label/macro F1 over the documents that carried a label the model knows."""
    counts = {(truth, predicted): count for (truth, predicted), count in label_pairs}
    known = {pair: count for pair, count in counts.items() if pair[0] in label_names}
    total = sum(known.values())
    if not total:
        return None
    per_class = {}
    for name in label_names:
        tp = known.get((name, name), 0)
        predicted = sum(c for (_, p), c in known.items() if p == name)
        support = sum(c for (t, _), c in known.items() if t == name)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return {
        "accuracy": sum(c for (t, p), c in known.items() if t == p) / total,
        "macro_f1": float(np.mean([m["f1"] for m in per_class.values()])),
        "num_examples": total,
        "per_class": per_class,
        "unknown_true_labels": sum(c for (t, _), c in counts.items() if t not in label_names),
    }


def model_timings(result: beam.runners.runner.PipelineResult) -> dict:
    """Seconds spent loading the model and inside its calls, from RunInference's own metrics.

    These separate the model's work from the pipeline's (start-up, reading, writing): what
    `--padding` and `--batch-size` change. Empty where the runner reports no metrics.
    """
    model_metrics = MetricsFilter().with_namespace(SavedModelTextHandler.METRICS_NAMESPACE)
    try:
        distributions = result.metrics().query(model_metrics)
    except (NotImplementedError, AttributeError):  # runners without a metrics API
        return {}
    totals = {}
    for metric in distributions["distributions"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        if value is not None and value.count:
            totals[metric.key.metric.name] = totals.get(metric.key.metric.name, 0) + value.sum
    timings = {}
    if "load_model_latency_milli_secs" in totals:
        timings["model_load_seconds"] = round(totals["load_model_latency_milli_secs"] / 1e3, 3)
    if "inference_batch_latency_micro_secs" in totals:
        timings["model_call_seconds"] = round(totals["inference_batch_latency_micro_secs"] / 1e6, 3)
    return timings


def finish_summary(output_dir: str, export_metadata: dict, wall_seconds: float, timings: dict | None = None) -> dict:
    """Completes the in-pipeline summary with timings and evaluation, checks it reconciles, writes it."""
    summary = outputs.take_json(FileSystems.join(output_dir, _PARTIAL_SUMMARY))
    outputs.check_reconciles(summary["read"], scored=summary["scored"], rejected=summary["rejected"])
    label_pairs = summary.pop("label_pairs")
    summary.update({"wall_seconds": round(wall_seconds, 2),
                    "docs_per_second": round(summary["read"] / wall_seconds, 1)})
    summary.update(timings or {})
    if summary.get("model_call_seconds"):
        summary["model_call_docs_per_second"] = round(summary["scored"] / summary["model_call_seconds"], 1)
    if not export_metadata["multi_label"]:
        evaluation = evaluation_summary(label_pairs, export_metadata["label_names"])
        if evaluation:
            summary["evaluation"] = {k: evaluation[k] for k in ("accuracy", "macro_f1", "num_examples")}
            outputs.write_text(FileSystems.join(output_dir, predictions.EVALUATION_FILE),
                               json.dumps(evaluation, indent=2) + "\n")
    outputs.write_text(FileSystems.join(output_dir, predictions.SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
    return summary


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m pipelines.score",
        description="Score documents with an exported model. Unrecognised --flags are passed to Beam.")
    add = functools.partial(cli.add_override, parser)
    add("--model", "score.model", metavar="MODEL_DIR_OR_EXPORT",
        help="A model directory (its newest export is used) or an export directory.")
    add("--input", "corpus.inputs", action="append", metavar="PATTERN", help="Documents to score; repeatable.")
    add("--format", "corpus.format", choices=config_lib.INPUT_FORMATS)
    add("--text-field", "corpus.text_field")
    add("--label-field", "corpus.label_field", help="Optional labels, for an evaluation summary.")
    add("--id-field", "corpus.id_field", help="Document id field (default: the record's source location).")
    add("--output-dir", "score.output_dir", metavar="DIR")
    add("--output-format", "score.output_format", choices=config_lib.OUTPUT_FORMATS)
    add("--batch-size", "score.batch_size", type=int, help="Documents per model call (64).")
    add("--padding", "score.padding", choices=config_lib.PADDING_MODES,
        help="longest (default): documents sorted by length, each batch padded to its longest one; "
             "max_length: every batch padded to max_seq_length, in arrival order.")
    add("--keep-fields", "score.keep_fields", type=lambda v: tuple(f for f in v.split(",") if f),
        metavar="F1,F2", help="Input fields copied into each prediction.")
    add("--num-shards", "score.num_shards", type=int, help="Output shards (default: the runner decides).")
    add("--overwrite", "score.overwrite", action="store_const", const=True)
    return parser


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the stage; returns the summary written to summary.json."""
    job, options = cli.parse_job_args(build_parser(), argv)
    if not job.score.model:
        raise UserError("No model given: pass --model MODEL_DIR_OR_EXPORT.")
    export_dir = resolve_export(job.score.model)
    export_metadata = read_export_metadata(export_dir)
    started = time.time()
    with outputs.StagedOutputDir(job.score.output_dir, job.score.overwrite) as output:
        outputs.write_text(output.join(features.CONFIG_FILE), job.to_json())
        with make_pipeline(options) as pipeline:
            build_pipeline(pipeline, job, export_dir, export_metadata, output.path)
        summary = finish_summary(output.path, export_metadata, time.time() - started, model_timings(pipeline.result))
        output.commit()
    logging.info("read=%d scored=%d rejected=%d with model %s; outputs in %s", summary["read"], summary["scored"],
                 summary["rejected"], summary["model_version"], job.score.output_dir)
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    cli.run_main(run, argv)


if __name__ == "__main__":
    main()
