"""Preprocessing stage: raw corpus → validated documents → tf.Transform → TFRecords.

    python -m pipelines.preprocess --input 'corpus/*.jsonl' --output-dir out/prep [Beam options]
    python -m pipelines.preprocess --task pretrain --input 'unlabelled/*.jsonl' --output-dir out/pairs

Two tasks share the readers, validation, train/eval split by document, dead-letter output and
staged output directory:
- classify (default): labelled documents → padded token ids and label ids (`build_pipeline`);
- pretrain: unlabelled documents (labels ignored) → SentencePiece segment pairs `[CLS] A [SEP] B
  [SEP]` with segment ids and the sentence-order label (`build_pretrain_pipeline`, see
  `pipelines.segment_pairs`), and the model the ids are of as spiece.model.

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
import logging
import time
from typing import Any, Callable, Sequence

import apache_beam as beam
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystems import FileSystems
from tfx_bsl.tfxio.tensor_adapter import TensorAdapterConfig

from pipelines import cli, outputs, pretrain_data
from pipelines.input_splits import plan_splits
from pipelines.io import ReadCorpus, WriteRejected, input_total_bytes, list_input_files, text_dirs_directories
from pipelines.options import make_pipeline, make_pipeline_options
from pipelines.preprocessing_fn import preprocessing_fn, pretrain_preprocessing_fn
from pipelines.pretrain_data import EncodePairs, MakeSegmentPairs
from pipelines.progress import StageProgress
from pipelines.pretrained_dir import apply_to_settings, read_pretrained_tokenizer
from pipelines.segment_pairs import FRAMING_IDS, MIN_PIECES
from pipelines.sentencepiece_model import LEARNED_LAYOUT, SentencePieceModel, describe, read_model_file
from pipelines.stats import SummarizeCorpus, SummarizePairs
from pipelines.stats_file import PARTIAL_STATS, finish_pretrain_stats, finish_stats
from pipelines.transforms import (CountRejections, DuplicateOwners, RejectUnknownLabels, SplitTrainEval,
                                  ToRecordBatches, ValidateDocuments, to_record_batch)
from schemas import config as config_lib
from schemas import features, output_dirs
from schemas.config_loader import read_job_file
from schemas.errors import UserError
from schemas.raw_schema import RAW_ARROW_SCHEMA, raw_tensor_representations

class WriteExamples(beam.PTransform):
    """Writes serialized tf.Examples as gzip TFRecord shards `<directory>/part-*.tfrecord.gz`."""

    def __init__(self, directory: str):
        super().__init__()
        self._prefix = FileSystems.join(directory, "part")

    def expand(self, examples):
        return examples | "Write" >> beam.io.WriteToTFRecord(self._prefix, file_name_suffix=features.TFRECORD_SUFFIX)


READS = 3  # how many times the stage reads its corpus (see read_split_and_analyze)


@dataclasses.dataclass(frozen=True)
class AnalyzedCorpus:
    """The corpus read for writing, split, with tf.Transform's analysis done on another read."""

    records: beam.PCollection  # raw records (and rejections) of the read that writes
    validated: Any  # its ValidateDocuments outputs: documents and rejected
    split: Any  # its documents' SplitTrainEval outputs: train and eval
    analyzed_train: beam.PCollection  # the training documents the analyzers saw (another read)
    transform_fn: Any


def read_split_and_analyze(pipeline: beam.Pipeline, corpus: config_lib.CorpusConfig, eval_fraction: float,
                           transform: Callable, raw_adapter: TensorAdapterConfig, output_dir: str,
                           to_batch: Callable = to_record_batch, ignore_labels: bool = False) -> AnalyzedCorpus:
    """Reads the corpus three times instead of keeping it between the steps that need all of it
    before the rest can go on: once to find duplicated texts (they decide the split), once for
    tf.Transform's analyzers over the training split (transform_fn, written to `output_dir`), once
    for the caller to transform, check and write. So no runner has to hold the corpus, and memory
    does not grow with it; each extra read costs reading and validating again, and the split
    depends only on the documents, so every read splits alike."""
    splits = plan_splits(list_input_files(corpus))  # listed and planned once: every read sees the same files
    progress = StageProgress(output_dirs.PREPROCESS, input_total_bytes(splits), reads=READS)

    def read_documents(step: str):  # step "" is the read that writes: its documents are the ones counted
        records = pipeline | f"ReadCorpus{step}" >> ReadCorpus(corpus, splits, progress, counts_documents=not step)
        return records, records | f"ValidateDocuments{step}" >> ValidateDocuments(corpus, ignore_labels=ignore_labels)

    _, first_read = read_documents("ForDuplicates")
    duplicate_owners = first_read.documents | "DuplicateOwners" >> DuplicateOwners()

    _, second_read = read_documents("ForAnalyzers")
    analyzed = second_read.documents | "SplitForAnalyzers" >> SplitTrainEval(eval_fraction, duplicate_owners)
    transform_fn = (
        (analyzed.train | "BatchForAnalyzers" >> ToRecordBatches(to_batch=to_batch), raw_adapter)
        | "AnalyzeTrain" >> tft_beam.AnalyzeDataset(transform)
    )
    _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(output_dir)

    records, validated = read_documents("")
    split = validated.documents | "SplitTrainEval" >> SplitTrainEval(eval_fraction, duplicate_owners)
    return AnalyzedCorpus(records, validated, split, analyzed.train, transform_fn)


def build_pipeline(pipeline: beam.Pipeline, job: config_lib.JobConfig, output_dir: str,
                   sentencepiece_model: SentencePieceModel | None = None) -> None:
    """The stage's data flow, top to bottom. Writes everything under `output_dir`. The corpus is
    read three times (`read_split_and_analyze`); the analyzers' read also gives the labels that
    training knows.

    `sentencepiece_model`: the given model of the sentencepiece tokenizer (None: learned here).
    """
    corpus, settings = job.corpus, job.preprocess
    raw_adapter = TensorAdapterConfig(RAW_ARROW_SCHEMA, raw_tensor_representations(corpus.multi_label))
    transform = functools.partial(preprocessing_fn, config=settings, multi_label=corpus.multi_label,
                                  sentencepiece_model=sentencepiece_model)

    corpus_read = read_split_and_analyze(pipeline, corpus, settings.eval_fraction, transform, raw_adapter, output_dir)
    records, validated, split = corpus_read.records, corpus_read.validated, corpus_read.split
    transform_fn = corpus_read.transform_fn

    eval_checked = split.eval | "RejectUnknownLabels" >> RejectUnknownLabels(corpus_read.analyzed_train)
    rejected = (
        (validated.rejected, eval_checked.rejected)
        | "AllRejected" >> beam.Flatten()
        | "CountRejections" >> CountRejections("preprocess")
    )
    _ = rejected | "WriteRejected" >> WriteRejected(output_dir)

    train_dataset = (
        ((split.train | "BatchTrain" >> ToRecordBatches(), raw_adapter), transform_fn)
        | "TransformTrain" >> tft_beam.TransformDataset(output_record_batches=True)
    )
    eval_dataset = (
        ((eval_checked.documents | "BatchEval" >> ToRecordBatches(), raw_adapter), transform_fn)
        | "TransformEval" >> tft_beam.TransformDataset(output_record_batches=True)
    )
    _ = (train_dataset
         | "EncodeTrain" >> tft_beam.EncodeTransformedDataset()
         | "WriteTrain" >> WriteExamples(FileSystems.join(output_dir, features.TRAIN_SPLIT)))
    _ = (eval_dataset
         | "EncodeEval" >> tft_beam.EncodeTransformedDataset()
         | "WriteEval" >> WriteExamples(FileSystems.join(output_dir, features.EVAL_SPLIT)))

    (train_transformed, _), (eval_transformed, _) = train_dataset, eval_dataset
    _ = (
        pipeline
        | "SummarizeCorpus" >> SummarizeCorpus(
            read=records, train=split.train, eval_=eval_checked.documents, rejected=rejected,
            transformed=(train_transformed, eval_transformed), max_seq_length=settings.max_seq_length)
        | "WriteSummary" >> beam.io.WriteToText(
            FileSystems.join(output_dir, PARTIAL_STATS), num_shards=1, shard_name_template="")
    )


def build_pretrain_pipeline(pipeline: beam.Pipeline, job: config_lib.JobConfig, output_dir: str,
                            sentencepiece_model: SentencePieceModel | None = None) -> None:
    """The pretrain task's data flow, top to bottom. Writes everything but spiece.model under
    `output_dir`. Needs `tft_beam.Context(passthrough_keys=pretrain_data.PASSTHROUGH_KEYS)`.

    `sentencepiece_model`: the given model (None: learned here, from the training split).
    """
    corpus, settings = job.corpus, job.preprocess
    raw_adapter = pretrain_data.raw_adapter_config()
    transform = functools.partial(pretrain_preprocessing_fn, config=settings, sentencepiece_model=sentencepiece_model)
    special = sentencepiece_model.special_tokens if sentencepiece_model else LEARNED_LAYOUT
    make_pairs = functools.partial(MakeSegmentPairs, settings.max_seq_length, special["cls"], special["sep"])
    to_batch = pretrain_data.to_pretrain_record_batch

    corpus_read = read_split_and_analyze(pipeline, corpus, settings.eval_fraction, transform, raw_adapter, output_dir,
                                         to_batch=to_batch, ignore_labels=True)
    records, validated, split = corpus_read.records, corpus_read.validated, corpus_read.split
    transform_fn = corpus_read.transform_fn

    train_tokenized, _ = (
        ((split.train | "BatchTrain" >> ToRecordBatches(to_batch=to_batch), raw_adapter), transform_fn)
        | "TransformTrain" >> tft_beam.TransformDataset(output_record_batches=True)
    )
    eval_tokenized, _ = (
        ((split.eval | "BatchEval" >> ToRecordBatches(to_batch=to_batch), raw_adapter), transform_fn)
        | "TransformEval" >> tft_beam.TransformDataset(output_record_batches=True)
    )

    train_pairs = train_tokenized | "PairTrain" >> make_pairs()
    eval_pairs = eval_tokenized | "PairEval" >> make_pairs()
    rejected = (
        (validated.rejected, train_pairs.rejected, eval_pairs.rejected)
        | "AllRejected" >> beam.Flatten()
        | "CountRejections" >> CountRejections("preprocess")
    )
    _ = rejected | "WriteRejected" >> WriteRejected(output_dir)
    _ = (train_pairs.documents
         | "EncodeTrain" >> EncodePairs()
         | "WriteTrain" >> WriteExamples(FileSystems.join(output_dir, features.TRAIN_SPLIT)))
    _ = (eval_pairs.documents
         | "EncodeEval" >> EncodePairs()
         | "WriteEval" >> WriteExamples(FileSystems.join(output_dir, features.EVAL_SPLIT)))

    _ = (
        pipeline
        | "SummarizePairs" >> SummarizePairs(read=records, rejected=rejected, train_pairs=train_pairs.documents,
                                             eval_pairs=eval_pairs.documents)
        | "WriteSummary" >> beam.io.WriteToText(
            FileSystems.join(output_dir, PARTIAL_STATS), num_shards=1, shard_name_template="")
    )


def _why_nothing_to_train_on(stats: dict) -> str:
    if stats["read"] == 0:
        return "the input holds no records"
    reasons = ", ".join(f"{reason} {count}" for reason, count in stats["rejected_by_reason"].items())
    return f"{stats['read']} read, {stats['rejected']} rejected ({reasons})"


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m pipelines.preprocess",
        description="Raw corpus → tf.Transform → TFRecords: padded token ids and labels (classify) or "
                    "segment pairs for pretraining (--task pretrain). "
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
    add("--task", "preprocess.task", choices=features.TASKS,
        help="classify (default): labelled documents → padded token ids and label ids, for model.trainer; "
             "pretrain: documents (labels ignored) → sentencepiece segment pairs [CLS] A [SEP] B [SEP] with "
             "sentence-order labels, for model.pretrain.")
    add("--tokenizer", "preprocess.tokenizer", choices=features.TOKENIZERS,
        help="word (vocabulary of words), wordpiece (subwords learned from the corpus) or sentencepiece "
             "(ALBERT's: a given SentencePiece model, or one learned from the corpus). The pretrain task "
             "takes sentencepiece only (its default).")
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
        help="Tokens kept per document (padded; sentencepiece: [CLS] and [SEP] included); pretrain: the "
             "longest segment pair, framing included (at least 5). Default 256, or the --pretrained "
             "encoder's longest sequence if that is shorter.")
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


def _with_task_tokenizer(job: config_lib.JobConfig, explicit: dict[str, Any]) -> config_lib.JobConfig:
    """The pretrain task tokenizes with sentencepiece (implied when no tokenizer is given)."""
    settings = job.preprocess
    if settings.task != features.TASK_PRETRAIN:
        return job
    if explicit.get("tokenizer", "sentencepiece") != "sentencepiece":
        raise config_lib.ConfigError(f"preprocess.task pretrain needs preprocess.tokenizer sentencepiece (learned, "
                                     f"--sentencepiece-model or --pretrained). "
                                     f"Received: tokenizer={explicit['tokenizer']!r}")
    return dataclasses.replace(job, preprocess=dataclasses.replace(settings, tokenizer="sentencepiece"))


def _check_pair_room(settings: config_lib.PreprocessConfig) -> None:
    shortest = FRAMING_IDS + MIN_PIECES
    if settings.task == features.TASK_PRETRAIN and settings.max_seq_length < shortest:
        raise config_lib.ConfigError(f"preprocess.max_seq_length must be at least {shortest} for the pretrain task "
                                     f"([CLS] A [SEP] B [SEP]). Received: max_seq_length={settings.max_seq_length}")


def resolve_tokenizer(job: config_lib.JobConfig, explicit: dict[str, Any]
                      ) -> tuple[config_lib.JobConfig, SentencePieceModel | None]:
    """The job with the task's tokenizer and the pretrained directory's settings applied, and the
    given SentencePiece model read and checked (None when there is none to read)."""
    job = _with_task_tokenizer(job, explicit)
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
    _check_pair_room(settings)
    return dataclasses.replace(job, preprocess=settings), model


def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the stage; returns the stats written to stats.json."""
    known, beam_args = build_parser().parse_known_args(argv)
    job, options = cli.resolve_job(known), make_pipeline_options(beam_args)
    job, sentencepiece_model = resolve_tokenizer(job, _explicit_settings(known))
    corpus, settings = job.corpus, job.preprocess
    started = time.time()
    pretrain = settings.task == features.TASK_PRETRAIN
    build, finish = (build_pretrain_pipeline, finish_pretrain_stats) if pretrain else (build_pipeline, finish_stats)
    with outputs.StagedOutputDir(settings.output_dir, settings.overwrite, output_dirs.PREPROCESS,
                                 input_dirs=text_dirs_directories(corpus), input_patterns=corpus.inputs) as output:
        outputs.write_text(output.join(features.CONFIG_FILE), job.to_json())
        context = tft_beam.Context(temp_dir=output.join("tmp"),
                                   passthrough_keys=set(pretrain_data.PASSTHROUGH_KEYS) if pretrain else None)
        with make_pipeline(options) as pipeline, context:
            build(pipeline, job, output.path, sentencepiece_model)
        _delete_tree(output.join("tmp"))
        stats = finish(output.path, job, time.time() - started, sentencepiece_model)
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
