"""What a scoring run reports: counts that reconcile, timings, duplicate ids and the evaluation.

The pipeline writes the counts it alone can see (read, scored, rejected by reason, duplicate
ids, counted label pairs) into one small JSON file; the launcher completes it with timings and
the evaluation (pipelines/score_evaluation.py) and writes summary.json and evaluation.json.
"""

from __future__ import annotations

import array
import hashlib
import json

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from pipelines import outputs
from pipelines.model_handler import ExportMetadata, SavedModelTextHandler
from pipelines.score_evaluation import evaluation_summary, summary_fields
from schemas import predictions

PARTIAL_SUMMARY = "summary.partial.json"


def label_pair(row: dict, multi_label: bool) -> list[tuple]:
    """(true label(s), predicted label(s)) of a labelled row, hashable; nothing for an unlabelled one."""
    truth = row[predictions.TRUE_LABEL]
    if truth is None:
        return []
    if multi_label:
        return [(tuple(truth), tuple(row[predictions.LABELS]))]
    return [(truth, row[predictions.LABEL])]


ID_HASH_BUCKETS = 256  # keys of the duplicate count: its work spreads over workers, its state stays compact


def bucketed_id_hash(doc_id: str) -> tuple[int, int]:
    """(bucket, 64-bit hash) of an id. Ids are compared by their hashes: two different ids collide
    with a chance of about n² / 2^65 (1 in 37 million for a million ids)."""
    value = int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little")
    return value % ID_HASH_BUCKETS, value


class CountDuplicatedHashes(beam.CombineFn):
    """The number of hash values seen more than once.

    The hashes are kept as 8 bytes each in an array (a dict of a million ids would take hundreds
    of megabytes), so counting duplicates over a large run keeps memory flat.
    """

    def create_accumulator(self) -> array.array:
        return array.array("Q")

    def add_input(self, hashes: array.array, value: int) -> array.array:
        hashes.append(value)
        return hashes

    def merge_accumulators(self, accumulators) -> array.array:
        merged = array.array("Q")
        for hashes in accumulators:
            merged.extend(hashes)
        return merged

    def extract_output(self, hashes: array.array) -> int:
        _, counts = np.unique(np.frombuffer(hashes, dtype=np.uint64), return_counts=True)
        return int((counts > 1).sum())


def _summarize(_, read, scored, rejected_by_reason, duplicate_ids, label_pairs, model_version) -> str:
    return json.dumps({"read": read, "scored": scored, "rejected": sum(rejected_by_reason.values()),
                       "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
                       "duplicate_ids": duplicate_ids, "model_version": model_version,
                       "label_pairs": label_pairs})


class WritePartialSummary(beam.PTransform):
    """{"read": records, "predictions": rows, "rejected": rejections} → `<output_dir>/summary.partial.json`.

    `duplicate_ids` counts the ids given to more than one scored document (each row's `source`
    tells them apart).
    """

    def __init__(self, output_dir: str, export_metadata: ExportMetadata):
        super().__init__()
        self._path = FileSystems.join(output_dir, PARTIAL_SUMMARY)
        self._metadata = export_metadata

    def expand(self, parts):
        records, rows, rejected = parts["read"], parts["predictions"], parts["rejected"]
        rejected_by_reason = (rejected
                              | "Reasons" >> beam.Map(lambda r: r.reason)
                              | "CountReasons" >> beam.combiners.Count.PerElement()
                              | "ReasonsToDict" >> beam.combiners.ToDict())
        duplicate_ids = (rows
                         | "IdHashes" >> beam.Map(lambda row: bucketed_id_hash(row[predictions.ID]))
                         | "DuplicatedPerBucket" >> beam.CombinePerKey(CountDuplicatedHashes())
                         | "DuplicatedCounts" >> beam.Values()
                         | "CountDuplicated" >> beam.CombineGlobally(sum))
        label_pairs = (rows
                       | "LabelPairs" >> beam.FlatMap(label_pair, multi_label=self._metadata.multi_label)
                       | "CountPairs" >> beam.combiners.Count.PerElement()
                       | "PairsToList" >> beam.combiners.ToList())
        return (
            records.pipeline
            | "Start" >> beam.Create([None])
            | "Summarize" >> beam.Map(
                _summarize,
                read=pvalue.AsSingleton(records | "CountRead" >> beam.combiners.Count.Globally()),
                scored=pvalue.AsSingleton(rows | "CountScored" >> beam.combiners.Count.Globally()),
                rejected_by_reason=pvalue.AsSingleton(rejected_by_reason),
                duplicate_ids=pvalue.AsSingleton(duplicate_ids),
                label_pairs=pvalue.AsSingleton(label_pairs),
                model_version=self._metadata.version)
            | "WriteSummary" >> beam.io.WriteToText(self._path, num_shards=1, shard_name_template="")
        )


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


def complete_summary(partial: dict, export_metadata: ExportMetadata, wall_seconds: float,
                     timings: dict | None = None) -> tuple[dict, dict | None]:
    """The pipeline's counts + timings + evaluation → (summary, evaluation or None). Checks the counts reconcile."""
    summary = dict(partial)
    outputs.check_reconciles(summary["read"], scored=summary["scored"], rejected=summary["rejected"])
    label_pairs = summary.pop("label_pairs")
    summary.update({"wall_seconds": round(wall_seconds, 2),
                    "docs_per_second": round(summary["read"] / wall_seconds, 1) if wall_seconds > 0 else None})
    summary.update(timings or {})
    if summary.get("model_call_seconds"):
        summary["model_call_docs_per_second"] = round(summary["scored"] / summary["model_call_seconds"], 1)
    evaluation = evaluation_summary(label_pairs, export_metadata.label_names, export_metadata.multi_label)
    if evaluation:
        summary["evaluation"] = summary_fields(evaluation)
    return summary, evaluation


def finish_summary(output_dir: str, export_metadata: ExportMetadata, wall_seconds: float,
                   timings: dict | None = None) -> dict:
    """Completes the pipeline's summary file; writes summary.json (and evaluation.json when labelled)."""
    partial = outputs.take_json(FileSystems.join(output_dir, PARTIAL_SUMMARY))
    summary, evaluation = complete_summary(partial, export_metadata, wall_seconds, timings)
    if evaluation:
        outputs.write_text(FileSystems.join(output_dir, predictions.EVALUATION_FILE),
                           json.dumps(evaluation, indent=2) + "\n")
    outputs.write_text(FileSystems.join(output_dir, predictions.SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
    return summary


def summary_line(summary: dict, output_dir: str) -> str:
    """The one line the stage logs at the end: counts, and the evaluation with any drift in plain sight."""
    line = (f"read={summary['read']} scored={summary['scored']} rejected={summary['rejected']} "
            f"duplicate_ids={summary['duplicate_ids']} with model {summary['model_version']}")
    evaluation = summary.get("evaluation")
    if evaluation:
        accuracy = "n/a" if evaluation["accuracy"] is None else f"{evaluation['accuracy']:.4f}"
        line += (f"; {evaluation['labelled']} labelled: accuracy {accuracy} over the "
                 f"{evaluation['num_examples']} with labels the model knows, "
                 f"{evaluation['accuracy_all_labelled']:.4f} over all "
                 f"(unknown_true_labels={evaluation['unknown_true_labels']} counted as errors)")
    return f"{line}; outputs in {output_dir}"
