"""stats.json: the in-pipeline summary (PARTIAL_STATS) completed, checked and written after the run."""

from __future__ import annotations

import json

import tensorflow_transform as tft
from apache_beam.io.filesystems import FileSystems

from pipelines import outputs
from pipelines.sentencepiece_model import MODEL_ASSET, SentencePieceModel, describe, read_model_file
from pipelines.stats import tokenizer_facts
from schemas import config as config_lib
from schemas import features

PARTIAL_STATS = "stats.partial.json"  # what the pipeline writes; taken (and deleted) here


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


def _take_summary(output_dir: str, task: str) -> dict:
    """The pipeline's summary, checked to reconcile, headed by the task that made it."""
    summary = outputs.take_json(FileSystems.join(output_dir, PARTIAL_STATS))
    outputs.check_reconciles(summary["read"], accepted=summary["accepted"], rejected=summary["rejected"])
    return {"task": task, **summary}


def finish_stats(output_dir: str, job: config_lib.JobConfig, wall_seconds: float,
                 sentencepiece_model: SentencePieceModel | None = None) -> dict:
    """Completes the in-pipeline summary, checks it reconciles, writes stats.json.

    Vocabulary facts are added only when there were training documents to learn them from (or
    the SentencePiece model was given).
    """
    stats = _take_summary(output_dir, features.TASK_CLASSIFY)
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


def finish_pretrain_stats(output_dir: str, job: config_lib.JobConfig, wall_seconds: float,
                          sentencepiece_model: SentencePieceModel | None = None) -> dict:
    """The pretrain task's finish: writes the SentencePiece model the ids are of (given, or learned
    when there were training documents) as spiece.model, and the reconciled stats.json."""
    stats = _take_summary(output_dir, features.TASK_PRETRAIN)
    settings = job.preprocess
    if sentencepiece_model is None and stats["train"]:
        sentencepiece_model = _learned_sentencepiece_model(output_dir)
    if sentencepiece_model is not None:
        with FileSystems.create(FileSystems.join(output_dir, features.TOKENIZER_MODEL_FILE)) as f:
            f.write(sentencepiece_model.model)
    stats.update({
        "max_seq_length": settings.max_seq_length,
        "tokenizer": settings.tokenizer,
        "lowercase": settings.lowercase,
        **tokenizer_facts(settings, sentencepiece_model),
        "wall_seconds": round(wall_seconds, 2),
    })
    outputs.write_text(FileSystems.join(output_dir, features.STATS_FILE), json.dumps(stats, indent=2) + "\n")
    return stats
