"""Preprocessing stage: raw corpus → validated documents → tf.Transform → TFRecords.

    python -m pipelines.preprocess --input 'corpus/*.jsonl' --output-dir out/prep [Beam options]

Writes to the output directory: transform_fn/ and transformed_metadata/ (tf.Transform's layout),
train/ and eval/ (gzip TFRecord shards of tf.Example), rejected/ (JSON Lines with reason and
source), stats.json, config.json, and the markers _STAGE.json and _SUCCESS (pipelines/outputs.py).
A run without a training document ends with a UserError and leaves nothing finished. See
README.md for every flag.
"""

from __future__ import annotations

from schemas.runtime_defaults import apply_tensorflow_defaults

apply_tensorflow_defaults()  # before TensorFlow loads: it reads them once

import dataclasses
import functools
import json
import logging
import time
from typing import Any, Sequence

import apache_beam as beam
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystems import FileSystems
from tfx_bsl.tfxio.tensor_adapter import TensorAdapterConfig

from pipelines import cli, outputs
from pipelines.io import ReadCorpus, WriteRejected, text_dirs_directories
from pipelines.options import make_pipeline, make_pipeline_options
from pipelines.preprocessing_fn import preprocessing_fn
from pipelines.pretrained_dir import apply_to_settings, read_pretrained_tokenizer
from pipelines.sentencepiece_model import MODEL_ASSET, SentencePieceModel, describe, read_model_file
from pipelines.stats import SummarizeCorpus, tokenizer_facts
from pipelines.transforms import (CountRejections, RejectUnknownLabels, SplitTrainEval, ToRecordBatches,
                                  ValidateDocuments)
from schemas import config as config_lib
from schemas import features, output_dirs
from schemas.config_loader import read_job_file
from schemas.errors import UserError
from schemas.raw_schema import RAW_ARROW_SCHEMA, raw_tensor_representations

_PARTIAL_STATS = "stats.partial.json"


class WriteExamples(beam.PTransform):
    """Writes serialized tf.Examples as gzip TFRecord shards `<directory>/part-*.tfrecord.gz`."""

    def __init__(self, directory: str):
        super().__init__()
        self._prefix = FileSystems.join(directory, "part")

    def expand(self, examples):
        return examples | "Write" >> beam.io.WriteToTFRecord(self._prefix, file_name_suffix=features.TFRECORD_SUFFIX)


def build_pipeline(pipeline: beam.Pipeline, job: config_lib.JobConfig, output_dir: str,
                   sentencepiece_model: SentencePieceModel | None = None) -> None:
    """The stage's data flow, top to bottom. Writes everything under `output_dir`.

    `sentencepiece_model`: the given model of the sentencepiece tokenizer (None: learned here).
    """
    corpus, settings = job.corpus, job.preprocess
    raw_adapter = TensorAdapterConfig(RAW_ARROW_SCHEMA, raw_tensor_representations(corpus.multi_label))
    transform = functools.partial(preprocessing_fn, config=settings, multi_label=corpus.multi_label,
                                  sentencepiece_model=sentencepiece_model)

    records = pipeline | "ReadCorpus" >> ReadCorpus(corpus)
    validated = records | "ValidateDocuments" >> ValidateDocuments(corpus)
    split = validated.documents | "SplitTrainEval" >> SplitTrainEval(settings.eval_fraction)
    eval_checked = split.eval | "RejectUnknownLabels" >> RejectUnknownLabels(split.train)

    rejected = (
        (validated.rejected, eval_checked.rejected)
        | "AllRejected" >> beam.Flatten()
        | "CountRejections" >> CountRejections("preprocess")
    )
    _ = rejected | "WriteRejected" >> WriteRejected(output_dir)

    train_batches = split.train | "BatchTrain" >> ToRecordBatches()
    eval_batches = eval_checked.documents | "BatchEval" >> ToRecordBatches()
    train_dataset, transform_fn = (
        (train_batches, raw_adapter)
        | "AnalyzeAndTransformTrain" >> tft_beam.AnalyzeAndTransformDataset(transform, output_record_batches=True)
    )
    eval_dataset = (
        ((eval_batches, raw_adapter), transform_fn)
        | "TransformEval" >> tft_beam.TransformDataset(output_record_batches=True)
    )
    _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(output_dir)
    _ = (train_dataset
         | "EncodeTrain" >> tft_beam.EncodeTransformedDataset()
         | "WriteTrain" >> WriteExamples(FileSystems.join(output_dir, features.TRAIN_SPLIT)))
    _ = (eval_dataset
         | "EncodeEval" >> tft_beam.EncodeTransformedDataset()
         | "WriteEval" >> WriteExamples(FileSystems.join(output_dir, features.EVAL_SPLIT)))

    (train_transformed, _), (eval_transformed, _) = train_dataset, eval_dataset
    all_transformed = (train_transformed, eval_transformed) | "AllTransformed" >> beam.Flatten()
    _ = (
        pipeline
        | "SummarizeCorpus" >> SummarizeCorpus(
            read=records, train=split.train, eval_=eval_checked.documents, rejected=rejected,
            transformed=all_transformed, max_seq_length=settings.max_seq_length)
        | "WriteSummary" >> beam.io.WriteToText(
            FileSystems.join(output_dir, _PARTIAL_STATS), num_shards=1, shard_name_template="")
    )


def _vocabulary_size(output_dir: str, settings: config_lib.PreprocessConfig) -> int:
    """Size of the token id space the model must embed (padding and OOV buckets included)."""
    learned = tft.TFTransformOutput(output_dir).vocabulary_size_by_name(features.TOKEN_VOCABULARY)
    if settings.tokenizer == "word":
        return learned + settings.num_oov_buckets + 1
    return learned


def _learned_sentencepiece_model(output_dir: str) -> SentencePieceModel:
    """The model learned by the run, from its copy in transform_fn/assets/."""
    transform_fn = tft.TFTransformOutput(output_dir).transform_savedmodel_dir
    path = FileSystems.join(transform_fn, "assets", MODEL_ASSET)
    return describe(read_model_file(path), path)


def finish_stats(output_dir: str, job: config_lib.JobConfig, wall_seconds: float,
                 sentencepiece_model: SentencePieceModel | None = None) -> dict:
    """Completes the in-pipeline summary, checks it reconciles, writes stats.json.

    Vocabulary facts are added only when there were training documents to learn them from (or
    the SentencePiece model was given).
    """
    stats = outputs.take_json(FileSystems.join(output_dir, _PARTIAL_STATS))
    outputs.check_reconciles(stats["read"], accepted=stats["accepted"], rejected=stats["rejected"])
    settings = job.preprocess
    stats.update({
        "tokenizer": settings.tokenizer,
        "max_seq_length": settings.max_seq_length,
        "multi_label": job.corpus.multi_label,
        "num_labels": len(stats["labels"]),
        "wall_seconds": round(wall_seconds, 2),
    })
    if settings.tokenizer == "sentencepiece" and sentencepiece_model is None and stats["train"]:
        sentencepiece_model = _learned_sentencepiece_model(output_dir)
    if settings.tokenizer != "sentencepiece" and stats["train"]:
        stats["vocab_size"] = _vocabulary_size(output_dir, settings)
    stats.update(tokenizer_facts(settings, sentencepiece_model))
    outputs.write_text(FileSystems.join(output_dir, features.STATS_FILE), json.dumps(stats, indent=2) + "\n")
    return stats


def _why_nothing_to_train_on(stats: dict) -> str:
    if stats["read"] == 0:
        return "the input holds no records"
    reasons = ", ".join(f"{reason} {count}" for reason, count in stats["rejected_by_reason"].items())
    return f"{stats['read']} read, {stats['rejected']} rejected ({reasons})"


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m pipelines.preprocess",
        description="Raw labelled corpus → tf.Transform → padded token ids in TFRecords. "
                    "Unrecognised --flags are passed to Beam (e.g. --runner, --direct_num_workers).")
    add = functools.partial(cli.add_override, parser)
    add("--input", "corpus.inputs", action="append", metavar="PATTERN",
        help="File pattern or text-dirs directory, local or any Beam filesystem; repeatable.")
    add("--format", "corpus.format", choices=config_lib.INPUT_FORMATS,
        help="Input format (default: from each file's extension).")
    add("--text-field", "corpus.text_field", help="Field holding the document text (default: text).")
    add("--label-field", "corpus.label_field", help="Field holding the label (default: label).")
    add("--id-field", "corpus.id_field", help="Field holding a document id (default: a hash of the text).")
    add("--multi-label", "corpus.multi_label", action="store_const", const=True,
        help="Documents may carry several labels, separated by --label-separator.")
    add("--label-separator", "corpus.label_separator", help="Separator of multiple labels (default: ',').")
    add("--output-dir", "preprocess.output_dir", metavar="DIR", help="Where the outputs are written.")
    add("--tokenizer", "preprocess.tokenizer", choices=features.TOKENIZERS,
        help="word (vocabulary of words), wordpiece (subwords learned from the corpus) or sentencepiece "
             "(ALBERT's: a given SentencePiece model, or one learned from the corpus).")
    add("--sentencepiece-model", "preprocess.sentencepiece_model", metavar="PATH",
        help="A SentencePiece model file (any Beam filesystem) for the sentencepiece tokenizer; implies it.")
    add("--pretrained", "preprocess.pretrained", metavar="DIR",
        help="A pretrained-encoder directory: its SentencePiece model, letter case and longest sequence "
             "(implies --tokenizer sentencepiece).")
    add("--vocab-size", "preprocess.vocab_size", type=int,
        help="word: the token id space, padding and OOV buckets included; wordpiece, sentencepiece (learned): "
             "the target vocabulary size.")
    add("--min-frequency", "preprocess.min_frequency", type=int,
        help="word: tokens seen fewer times map to OOV buckets.")
    add("--num-oov-buckets", "preprocess.num_oov_buckets", type=int, help="word: hash buckets for unknown tokens.")
    add("--max-seq-length", "preprocess.max_seq_length", type=int,
        help="Tokens kept per document (padded; sentencepiece: [CLS] and [SEP] included). Default 256, "
             "or the --pretrained encoder's longest sequence if that is shorter.")
    add("--eval-fraction", "preprocess.eval_fraction", type=float, help="Share of documents for eval (0.1).")
    add("--no-lowercase", "preprocess.lowercase", action="store_const", const=False, help="Keep letter case.")
    add("--overwrite", "preprocess.overwrite", action="store_const", const=True,
        help="Replace a finished preprocessing output in --output-dir (nothing else is ever replaced).")
    return parser


def _explicit_settings(known) -> dict[str, Any]:
    """The preprocess settings the user gave (job file, then flags), before any default applies."""
    values = dict((read_job_file(known.config).get("preprocess") or {}) if known.config else {})
    values.update({key.split(".", 1)[1]: value for key, value in vars(known).items() if key.startswith("preprocess.")})
    return values


def resolve_tokenizer(job: config_lib.JobConfig, explicit: dict[str, Any]
                      ) -> tuple[config_lib.JobConfig, SentencePieceModel | None]:
    """The job with the pretrained directory's settings applied, and the given SentencePiece model
    read and checked (None when there is none to read)."""
    settings = job.preprocess
    source = settings.pretrained or settings.sentencepiece_model
    if source and explicit.get("tokenizer", "sentencepiece") != "sentencepiece":
        key = "pretrained" if settings.pretrained else "sentencepiece_model"
        raise config_lib.ConfigError(f"preprocess.{key} needs preprocess.tokenizer sentencepiece. "
                                     f"Received: tokenizer={explicit['tokenizer']!r}")
    if settings.pretrained:
        tokenizer = read_pretrained_tokenizer(settings.pretrained)
        settings, model = apply_to_settings(settings, tokenizer, explicit), tokenizer.model
    elif settings.sentencepiece_model:
        model = describe(read_model_file(settings.sentencepiece_model), settings.sentencepiece_model)
    else:
        model = None
    return dataclasses.replace(job, preprocess=settings), model


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the stage; returns the stats written to stats.json."""
    known, beam_args = build_parser().parse_known_args(argv)
    job, options = cli.resolve_job(known), make_pipeline_options(beam_args)
    job, sentencepiece_model = resolve_tokenizer(job, _explicit_settings(known))
    corpus, settings = job.corpus, job.preprocess
    started = time.time()
    with outputs.StagedOutputDir(settings.output_dir, settings.overwrite, output_dirs.PREPROCESS,
                                 input_dirs=text_dirs_directories(corpus), input_patterns=corpus.inputs) as output:
        outputs.write_text(output.join(features.CONFIG_FILE), job.to_json())
        with make_pipeline(options) as pipeline, tft_beam.Context(temp_dir=output.join("tmp")):
            build_pipeline(pipeline, job, output.path, sentencepiece_model)
        _delete_tree(output.join("tmp"))
        stats = finish_stats(output.path, job, time.time() - started, sentencepiece_model)
        if stats["train"] == 0:
            # Nothing can be trained on this output: it must not look finished, and the final
            # directory stays free for a corrected run. The rejections are kept for reading.
            failed = output.keep_failed("no training documents")
            raise UserError(f"No training documents: {_why_nothing_to_train_on(stats)}. Nothing was written to "
                            f"{settings.output_dir}; the rejected records are in "
                            f"{FileSystems.join(failed, features.REJECTED_DIR)}/.")
        output.commit()
    logging.info("read=%d accepted=%d (train=%d eval=%d) rejected=%d; outputs in %s", stats["read"],
                 stats["accepted"], stats["train"], stats["eval"], stats["rejected"], settings.output_dir)
    return stats


def _delete_tree(path: str) -> None:
    if FileSystems.exists(path):
        FileSystems.delete([path])


def main(argv: Sequence[str] | None = None) -> None:
    cli.run_main(run, argv)


if __name__ == "__main__":
    main()
