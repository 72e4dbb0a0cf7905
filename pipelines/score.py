"""Scoring stage: documents + an exported model → predictions, with every document accounted for.

    python -m pipelines.score --model out/model --input 'new/*.jsonl' --output-dir out/scored

Writes to the output directory: predictions-*.{jsonl,parquet,csv} (id, source, label, score,
probabilities, model_version, ...), rejected/ (JSON Lines with reason and source), summary.json
(read == scored + rejected, per-reason counts, duplicate ids, model version, wall time, docs/s),
evaluation.json when the documents carry labels, and config.json. A run that scores no document
(every record rejected, or no records) fails and leaves its output in `<dir>.failed-<id>`.
See README.md for every flag.

The task (single- or multi-label), the label names and the model version come from the export's
export.json, never from the job file.
"""

from __future__ import annotations

from schemas.runtime_defaults import apply_tensorflow_defaults

apply_tensorflow_defaults()  # before TensorFlow loads: it reads them once

import dataclasses
import functools
import logging
import time
from typing import Sequence

import apache_beam as beam

from pipelines import cli, outputs
from pipelines.input_splits import plan_splits
from pipelines.io import ReadCorpus, WriteRejected, input_total_bytes, list_input_files
from pipelines.model_handler import ExportMetadata, read_export_metadata, resolve_export
from pipelines.options import make_pipeline
from pipelines.prediction_sinks import WritePredictions
from pipelines.progress import StageProgress
from pipelines.score_summary import WritePartialSummary, finish_summary, model_timings, summary_line
from pipelines.scoring import ScoreDocuments
from pipelines.transforms import CountRejections, ValidateDocuments
from schemas import config as config_lib
from schemas import features, output_dirs
from schemas.errors import UserError


def build_pipeline(pipeline: beam.Pipeline, job: config_lib.JobConfig, export_dir: str,
                   export_metadata: ExportMetadata, output_dir: str) -> None:
    """The stage's data flow, top to bottom. Writes everything under `output_dir`."""
    corpus, settings = job.corpus, job.score
    splits = plan_splits(list_input_files(corpus))
    progress = StageProgress(output_dirs.SCORE, input_total_bytes(splits))
    records = pipeline | "ReadCorpus" >> ReadCorpus(corpus, splits, progress)
    validated = records | "ValidateDocuments" >> ValidateDocuments(corpus, require_label=False,
                                                                   keep_fields=settings.keep_fields)
    scored = validated.documents | "ScoreDocuments" >> ScoreDocuments(
        export_dir, export_metadata, settings.batch_size, id_from_source=corpus.id_field is None,
        padding=settings.padding, sort_window_batches=settings.sort_window_batches, progress=progress)
    rejected = (
        (validated.rejected, scored["failed"])
        | "AllRejected" >> beam.Flatten()
        | "CountRejections" >> CountRejections("score")
    )
    _ = rejected | "WriteRejected" >> WriteRejected(output_dir)
    _ = scored["predictions"] | "WritePredictions" >> WritePredictions(
        output_dir, settings.output_format, export_metadata.multi_label, settings.keep_fields, settings.num_shards)
    _ = ({"read": records, "predictions": scored["predictions"], "rejected": rejected}
         | "WritePartialSummary" >> WritePartialSummary(output_dir, export_metadata))


def job_for_export(job: config_lib.JobConfig, export_metadata: ExportMetadata) -> config_lib.JobConfig:
    """The job with the export's task: a multi-label model reads label lists whatever the job file says."""
    return dataclasses.replace(job, corpus=dataclasses.replace(job.corpus, multi_label=export_metadata.multi_label))


def nothing_scored_message(summary: dict, failed_dir: str) -> str:
    """The error of a run that scored no document, pointing at what it kept."""
    if summary["read"] == 0:
        return f"No document was scored: the input holds no records. The run's summary is in {failed_dir}/."
    reasons = ", ".join(f"{reason}: {count}" for reason, count in summary["rejected_by_reason"].items())
    return (f"No document was scored: all {summary['read']} record(s) were rejected ({reasons}). "
            f"See {failed_dir}/{features.REJECTED_DIR}/ for each record and its reason.")


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
    add("--label-separator", "corpus.label_separator",
        help="Multi-label models: splits a label field given as one string (default ','); lists are read as lists.")
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
    add("--overwrite", "score.overwrite", action="store_const", const=True,
        help="Replace a finished scoring output in --output-dir (never anything else).")
    return parser


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the stage; returns the summary written to summary.json. A run that scores nothing raises UserError."""
    job, options = cli.parse_job_args(build_parser(), argv)
    if not job.score.model:
        raise UserError("No model given: pass --model MODEL_DIR_OR_EXPORT.")
    export_dir = resolve_export(job.score.model)
    export_metadata = read_export_metadata(export_dir)
    job = job_for_export(job, export_metadata)
    started = time.time()
    with outputs.StagedOutputDir(job.score.output_dir, job.score.overwrite, output_dirs.SCORE,
                                 input_dirs=[job.score.model, export_dir],
                                 input_patterns=job.corpus.inputs) as output:
        outputs.write_text(output.join(features.CONFIG_FILE), job.to_json())
        with make_pipeline(options) as pipeline:
            build_pipeline(pipeline, job, export_dir, export_metadata, output.path)
        summary = finish_summary(output.path, export_metadata, time.time() - started, model_timings(pipeline.result))
        if summary["scored"] == 0:
            failed_dir = output.keep_failed("no document was scored")
            raise UserError(nothing_scored_message(summary, failed_dir))
        output.commit()
    logging.info("%s", summary_line(summary, job.score.output_dir))
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    cli.run_main(run, argv)


if __name__ == "__main__":
    main()
