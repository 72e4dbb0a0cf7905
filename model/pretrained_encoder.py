"""The pretrained-encoder directory (`schemas.pretrained`): writing it whole, reading it back.

The Python entry point for using such a directory in your own code:

    from model.pretrained_encoder import load_backbone
    backbone = load_backbone("gs://bucket/albert-base-v2")  # a keras_hub.models.AlbertBackbone
    outputs = backbone({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})
    outputs["sequence_output"], outputs["pooled_output"]  # (B, T, H), (B, H)

Paths may be on any filesystem TensorFlow knows (local, gs://, ...).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import posixpath
import tempfile
import uuid

import keras_hub
import sentencepiece
import tensorflow as tf

from model.albert_encoder import AlbertEncoder
from model.filesystem import GfileFilesystem, join, move_directory, read_text, write_bytes, write_text
from schemas import features, output_dirs
from schemas import pretrained as spec
from schemas.errors import UserError

# encoder.json's "backbone" keys: keras_hub.models.AlbertBackbone's constructor arguments.
BACKBONE_KEYS = ("vocabulary_size", "num_layers", "num_heads", "embedding_dim", "hidden_dim", "intermediate_dim",
                 "num_groups", "num_inner_repetitions", "max_sequence_length", "num_segments", "dropout")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tokenizer_description(model_proto: bytes, lowercase: bool, source: str) -> dict:
    """encoder.json's "tokenizer" for the SentencePiece model `model_proto` (read from `source`).

    Raises UserError when it is not a SentencePiece model, or lacks what the encoders and the
    `[CLS] … [SEP]` framing need: `<pad>` at id 0 (features.PAD_ID), `[CLS]` and `[SEP]`.
    """
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model_proto)
    except (RuntimeError, OSError):
        raise UserError(f"{source} is not a SentencePiece model.") from None
    special = {name: processor.PieceToId(piece) for name, piece in spec.SPECIAL_PIECES.items()
               if processor.IdToPiece(processor.PieceToId(piece)) == piece}
    if special.get("pad") != features.PAD_ID:
        raise UserError(f"The SentencePiece model {source} must have {spec.PAD_PIECE} at id {features.PAD_ID} "
                        f"(padding). Received: {spec.PAD_PIECE} at {special.get('pad')}")
    missing = [spec.SPECIAL_PIECES[name] for name in ("cls", "sep") if name not in special]
    if missing:
        raise UserError(f"The SentencePiece model {source} has no {' or '.join(missing)} piece; "
                        f"ALBERT's inputs are framed [CLS] … [SEP].")
    return {"type": spec.TOKENIZER_SENTENCEPIECE, "model_file": spec.TOKENIZER_MODEL_FILE, "lowercase": lowercase,
            "vocabulary_size": processor.GetPieceSize(), "sha256": sha256_hex(model_proto),
            "special_tokens": special}


def backbone_config(backbone: keras_hub.models.AlbertBackbone) -> dict:
    """encoder.json's "backbone": the arguments that rebuild `backbone`."""
    config = backbone.get_config()
    return {key: config[key] for key in BACKBONE_KEYS}


def encoder_json(backbone: keras_hub.models.AlbertBackbone, tokenizer: dict, provenance: dict) -> dict:
    created = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return {"format_version": spec.FORMAT_VERSION, "architecture": spec.ARCHITECTURE_ALBERT,
            "backbone": backbone_config(backbone), "tokenizer": tokenizer,
            "provenance": {**provenance, "created": created, "project_version": output_dirs.PROJECT_VERSION}}


def check_can_write(output_dir: str, stage: str, overwrite: bool, input_dirs=()) -> str:
    """"new" or "replace" for `output_dir`; raises UserError when `stage` may not write there."""
    output_dirs.check_not_overlapping(output_dir, input_dirs)
    try:
        if tf.io.gfile.exists(output_dir) and not tf.io.gfile.isdir(output_dir):
            raise UserError(f"Output directory {output_dir} is a file; choose a directory.")
        return output_dirs.check_output_dir(GfileFilesystem(), output_dir, stage, overwrite)
    except tf.errors.OpError as e:
        raise UserError(f"Cannot read the output directory {output_dir}: {e.message.splitlines()[0]}") from None


def write_pretrained_dir(output_dir: str, backbone: keras_hub.models.AlbertBackbone, tokenizer_model: bytes,
                         tokenizer: dict, provenance: dict, *, stage: str = output_dirs.IMPORT,
                         overwrite: bool = False, input_dirs=()) -> str:
    """Writes a pretrained-encoder directory at `output_dir`, whole or not at all; returns its path.

    Everything goes into a sibling `.<name>.staging-<id>` first (`_STAGE.json` first of all),
    which is renamed to `output_dir` at the end, `_SUCCESS` written last. An existing directory is
    replaced only when it is this `stage`'s finished output and `overwrite` is set.

    Args:
        output_dir: the directory to write (any TensorFlow filesystem).
        backbone: the keras-hub AlbertBackbone whose config and weights are written.
        tokenizer_model: the SentencePiece model's bytes (written as spiece.model).
        tokenizer: encoder.json's "tokenizer" (see `tokenizer_description`).
        provenance: encoder.json's "provenance", less "created" and "project_version" (added here).
        stage: the stage name written to _STAGE.json (`output_dirs.IMPORT`, `output_dirs.PRETRAIN`).
        overwrite: whether this stage's finished output at `output_dir` may be replaced.
        input_dirs: directories the stage read, which `output_dir` may not overlap.
    """
    output_dir = output_dir.rstrip("/")
    decision = check_can_write(output_dir, stage, overwrite, input_dirs)
    description = encoder_json(backbone, tokenizer, provenance)
    parent, name = posixpath.split(output_dir)
    # A hidden sibling whose name does not start with DIR's: filesystems that match names by prefix
    # (TensorFlow's ram://) would otherwise see DIR as existing while it is being staged.
    staging = posixpath.join(parent, f".{name}.staging-{uuid.uuid4().hex[:8]}")
    try:
        tf.io.gfile.makedirs(staging)
        write_text(join(staging, output_dirs.STAGE_MARKER), output_dirs.stage_marker(stage))
        write_encoder_files(staging, backbone, tokenizer_model, description)
        if decision == "replace":
            tf.io.gfile.rmtree(output_dir)  # check_output_dir made sure it is this stage's own output
        move_directory(staging, output_dir)
        write_text(join(output_dir, features.SUCCESS_MARKER), "")
    except tf.errors.OpError as e:
        raise UserError(f"Cannot write {output_dir}: {e.message.splitlines()[0]}") from None
    finally:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
    return output_dir


def write_encoder_files(directory: str, backbone: keras_hub.models.AlbertBackbone, tokenizer_model: bytes,
                        description: dict) -> None:
    """spiece.model, encoder.weights.h5 and encoder.json (`description`, see `encoder_json`) into
    `directory`, encoder.json last; the caller marks the directory finished (_SUCCESS) after."""
    write_bytes(join(directory, spec.TOKENIZER_MODEL_FILE), tokenizer_model)
    _save_weights(backbone, join(directory, spec.WEIGHTS_FILE))
    write_text(join(directory, spec.ENCODER_FILE), json.dumps(description, indent=2) + "\n")


def read_encoder_config(directory: str) -> dict:
    """encoder.json of the finished pretrained-encoder directory `directory`, checked.

    Raises UserError for a directory that is not one (or not finished), or that a newer release
    wrote (`format_version` above `schemas.pretrained.FORMAT_VERSION`).
    """
    directory = directory.rstrip("/")
    path = join(directory, spec.ENCODER_FILE)
    if not tf.io.gfile.exists(path):
        raise UserError(f"{directory} is not a pretrained-encoder directory (no {spec.ENCODER_FILE}); "
                        f"write one with `python -m model.import_checkpoint`.")
    if not tf.io.gfile.exists(join(directory, features.SUCCESS_MARKER)):
        raise UserError(f"{directory} is an unfinished pretrained-encoder directory (no {features.SUCCESS_MARKER}).")
    try:
        config = json.loads(read_text(path))
        version = config["format_version"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path} is not a valid {spec.ENCODER_FILE} (no format_version).") from None
    if not isinstance(version, int) or version > spec.FORMAT_VERSION:
        raise UserError(f"{directory} has format_version {version!r}, newer than this release reads "
                        f"(format_version {spec.FORMAT_VERSION}); upgrade albert-pipelines to use it.")
    if config.get("architecture") != spec.ARCHITECTURE_ALBERT:
        raise UserError(f"{path} describes the architecture {config.get('architecture')!r}; "
                        f"only {spec.ARCHITECTURE_ALBERT!r} is supported.")
    missing = [key for key in BACKBONE_KEYS if key not in config.get("backbone", {})]
    if missing:
        raise UserError(f"{path} lacks backbone.{missing[0]}.")
    return config


def load_backbone(directory: str, dtype=None) -> keras_hub.models.AlbertBackbone:
    """The keras-hub AlbertBackbone stored in the pretrained-encoder directory, with its weights.

    Its inputs are `token_ids`, `segment_ids` and `padding_mask` (int (B, T) each), its outputs
    `sequence_output` (B, T, H) and `pooled_output` (B, H). `dtype`: a dtype policy name
    ("mixed_bfloat16"...); default the global policy.
    """
    config = read_encoder_config(directory)
    backbone = keras_hub.models.AlbertBackbone(**config["backbone"], dtype=dtype)
    load_backbone_weights(backbone, directory)
    return backbone


def load_encoder(directory: str, *, pooling: str, dropout: float) -> AlbertEncoder:
    """An AlbertEncoder with the directory's architecture and weights (for fine-tuning)."""
    backbone = read_encoder_config(directory)["backbone"]
    encoder = AlbertEncoder(
        vocab_size=backbone["vocabulary_size"], max_seq_length=backbone["max_sequence_length"],
        embedding_dim=backbone["embedding_dim"], hidden_dim=backbone["hidden_dim"],
        num_layers=backbone["num_layers"], num_groups=backbone["num_groups"], num_heads=backbone["num_heads"],
        intermediate_dim=backbone["intermediate_dim"], num_inner_repetitions=backbone["num_inner_repetitions"],
        num_segments=backbone["num_segments"], pooling=pooling, dropout=dropout)
    load_backbone_weights(encoder.backbone, directory)
    return encoder


def load_backbone_weights(backbone: keras_hub.models.AlbertBackbone, directory: str) -> None:
    """Assigns the weights of `directory`'s encoder.weights.h5 to `backbone` (same architecture)."""
    path = join(directory.rstrip("/"), spec.WEIGHTS_FILE)
    with tempfile.TemporaryDirectory() as local:
        if "://" in path:  # h5py reads local files only
            tf.io.gfile.copy(path, os.path.join(local, spec.WEIGHTS_FILE))
            path = os.path.join(local, spec.WEIGHTS_FILE)
        try:
            backbone.load_weights(path)
        except (ValueError, OSError) as e:
            raise UserError(f"Cannot load {spec.WEIGHTS_FILE} of {directory}: {str(e).splitlines()[0][:300]}") from None


def _save_weights(backbone: keras_hub.models.AlbertBackbone, path: str) -> None:
    with tempfile.TemporaryDirectory() as local:
        local_path = os.path.join(local, spec.WEIGHTS_FILE)
        backbone.save_weights(local_path)  # h5py writes local files only
        tf.io.gfile.copy(local_path, path, overwrite=True)
