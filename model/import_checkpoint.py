"""Import a published ALBERT checkpoint into a pretrained-encoder directory (`schemas.pretrained`).

    python -m model.import_checkpoint --checkpoint SRC --output-dir DIR
        [--format auto|huggingface|tf1] [--sentencepiece-model PATH] [--cased] [--overwrite]

SRC is a Hugging Face directory (config.json, model.safetensors, spiece.model; saved from
AlbertModel, AlbertForSequenceClassification, AlbertForPreTraining, AlbertForMaskedLM, ...) or
an original google-research/albert TF1 checkpoint (a prefix such as `.../model.ckpt-best`, or the
directory holding it, with albert_config.json and the SentencePiece `*.model` beside it).
Every backbone weight must come from the checkpoint, except the pooler: a checkpoint without one
(a masked-LM save) gets a freshly initialized pooler, which fine-tuning then trains. Task heads,
pretraining heads and optimizer state are ignored; any other tensor is an error.

The SentencePiece model is copied into DIR; its text normalization is ALBERT's, lower-cased
unless --cased (the published albert-*-v2 models are uncased). DIR is written whole or not at all.
"""

from __future__ import annotations

from schemas.runtime_defaults import apply_tensorflow_defaults

apply_tensorflow_defaults()  # before TensorFlow loads: it reads them once

import argparse
import logging
import posixpath
from typing import Sequence

import keras
import keras_hub

from model.checkpoint_mapping import assign_weights
from model.checkpoint_sources import FORMATS, read_checkpoint
from model.pretrained_encoder import check_can_write, tokenizer_description, write_pretrained_dir
from schemas import cli, output_dirs
from schemas import pretrained as spec
from schemas.errors import UserError

_POOLER_SEED = 42  # a freshly initialized pooler is the same on every import


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(job_file=False, prog="python -m model.import_checkpoint",
                                description="Import a published ALBERT checkpoint into a pretrained-encoder directory.")
    parser.add_argument("--checkpoint", required=True, metavar="SRC",
                        help="A Hugging Face directory, or a TF1 checkpoint prefix (or its directory).")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="The pretrained-encoder directory to write.")
    parser.add_argument("--format", default="auto", choices=FORMATS, help="Default: recognized from SRC's files.")
    parser.add_argument("--sentencepiece-model", metavar="PATH",
                        help="The SentencePiece model (default: spiece.model in SRC, or the *.model beside a TF1 "
                             "checkpoint).")
    parser.add_argument("--cased", action="store_true", help="The model is cased: do not lower-case text.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a finished import at DIR.")
    return parser


def run(argv: Sequence[str] | None = None) -> str:
    """Imports the checkpoint; returns the pretrained-encoder directory written."""
    args = build_parser().parse_args(argv)
    output_dir = args.output_dir.rstrip("/")
    source = args.checkpoint.rstrip("/") or args.checkpoint
    input_dirs = [source]  # DIR may not be inside it, nor hold it (replacing DIR would delete it)
    check_can_write(output_dir, output_dirs.IMPORT, args.overwrite, input_dirs)  # before reading anything

    checkpoint = read_checkpoint(args.checkpoint, args.format, args.sentencepiece_model)
    tokenizer = tokenizer_description(checkpoint.tokenizer_model, lowercase=not args.cased,
                                      source=checkpoint.tokenizer_file)
    vocabulary_size = checkpoint.backbone["vocabulary_size"]
    if tokenizer["vocabulary_size"] != vocabulary_size:
        raise UserError(f"{checkpoint.config_file} says vocab_size {vocabulary_size}, but the SentencePiece model "
                        f"{checkpoint.tokenizer_file} has {tokenizer['vocabulary_size']} pieces.")

    keras.utils.set_random_seed(_POOLER_SEED)
    backbone = keras_hub.models.AlbertBackbone(**checkpoint.backbone, dtype="float32")
    assignment = assign_weights(backbone, checkpoint.shapes, checkpoint.read, checkpoint.source_format,
                                checkpoint.source, posixpath.basename(checkpoint.config_file))
    if assignment.pooler == spec.POOLER_INITIALIZED:
        logging.warning("%s has no pooler tensors: the pooler (pooled_output) is freshly initialized; "
                        "fine-tuning trains it.", checkpoint.source)
    provenance = {"source": args.checkpoint, "source_format": checkpoint.source_format,
                  "tensors": assignment.tensors_used, "sha256": checkpoint.weights_sha256,
                  "pooler": assignment.pooler}
    write_pretrained_dir(output_dir, backbone, checkpoint.tokenizer_model, tokenizer, provenance,
                         stage=output_dirs.IMPORT, overwrite=args.overwrite, input_dirs=input_dirs)
    logging.info("Imported %d tensors of %s (%s; %d ignored; pooler %s) into %s.", assignment.tensors_used,
                 args.checkpoint, checkpoint.source_format, assignment.tensors_ignored, assignment.pooler, output_dir)
    return output_dir


def main(argv: Sequence[str] | None = None) -> None:
    cli.run_main(run, argv)


if __name__ == "__main__":
    main()
