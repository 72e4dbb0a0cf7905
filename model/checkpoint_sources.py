"""Reading a published ALBERT checkpoint: a Hugging Face directory or a google-research TF1 checkpoint.

Hugging Face: a directory with config.json, model.safetensors (or shards listed in
model.safetensors.index.json) and spiece.model. TF1: a checkpoint prefix (`.../model.ckpt`, or a
directory holding one), albert_config.json beside it and the SentencePiece model (a `*.model`
file beside it). Either may be on any filesystem TensorFlow knows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import posixpath
from typing import Callable

import numpy as np
import safetensors
import safetensors.numpy
import tensorflow as tf

from model.filesystem import join
from schemas import pretrained as spec
from schemas.errors import UserError

FORMAT_AUTO = "auto"
FORMATS = (FORMAT_AUTO, spec.SOURCE_HUGGINGFACE, spec.SOURCE_TF1)

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
HF_WEIGHTS_INDEX = "model.safetensors.index.json"
HF_TOKENIZER = "spiece.model"
TF1_CONFIG = "albert_config.json"

# GELU names meaning the tanh approximation, which keras-hub's backbone computes. In the original TF1
# code "gelu" is the tanh form too; Hugging Face's "gelu" is the exact (erf) form.
_TANH_GELU = {spec.SOURCE_HUGGINGFACE: ("gelu_new", "gelu_pytorch_tanh"), spec.SOURCE_TF1: ("gelu", "gelu_new")}
_LAYER_NORM_EPSILON = 1e-12  # keras-hub's AlbertBackbone, as ALBERT's


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What the importer needs from a source, read and checked."""

    source: str  # the path given
    source_format: str  # spec.SOURCE_HUGGINGFACE or spec.SOURCE_TF1
    config_file: str  # the architecture file read, for messages
    backbone: dict  # keras_hub.models.AlbertBackbone arguments
    shapes: dict  # every tensor name → shape
    read: Callable[[str], np.ndarray]
    weights_sha256: str  # of the weight files, read in name order
    tokenizer_model: bytes
    tokenizer_file: str


def read_checkpoint(source: str, source_format: str = FORMAT_AUTO,
                    sentencepiece_model: str | None = None) -> Checkpoint:
    """Reads `source` in `source_format` ("auto": recognized by its files)."""
    source = source.rstrip("/") or source
    if source_format not in FORMATS:
        raise UserError(f"Unknown checkpoint format {source_format!r}; choose one of {', '.join(FORMATS)}.")
    if source_format == FORMAT_AUTO:
        source_format = detect_format(source)
    if source_format == spec.SOURCE_HUGGINGFACE:
        return _read_huggingface(source, sentencepiece_model)
    return _read_tf1(source, sentencepiece_model)


def detect_format(source: str) -> str:
    """spec.SOURCE_HUGGINGFACE or spec.SOURCE_TF1, from the files at `source`; UserError otherwise."""
    if tf.io.gfile.isdir(source):
        if tf.io.gfile.exists(join(source, HF_CONFIG)):
            return spec.SOURCE_HUGGINGFACE
        if tf.io.gfile.exists(join(source, TF1_CONFIG)) or tf.io.gfile.glob(join(source, "*.index")):
            return spec.SOURCE_TF1
    elif tf.io.gfile.exists(f"{source}.index"):
        return spec.SOURCE_TF1
    elif not tf.io.gfile.exists(source):
        raise UserError(f"Checkpoint {source} does not exist.")
    raise UserError(f"Cannot tell what kind of checkpoint {source} is: expected a Hugging Face directory "
                    f"({HF_CONFIG}, {HF_WEIGHTS}) or a TF1 checkpoint prefix with {TF1_CONFIG}.")


def _read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def _read_json(path: str) -> dict:
    try:
        value = json.loads(_read_bytes(path))
    except ValueError:
        raise UserError(f"{path} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} must hold a JSON object.")
    return value


def _read_huggingface(directory: str, sentencepiece_model: str | None) -> Checkpoint:
    config_file = join(directory, HF_CONFIG)
    if not tf.io.gfile.exists(config_file):
        raise UserError(f"{directory} is not a Hugging Face checkpoint directory: it has no {HF_CONFIG}.")
    config = _read_json(config_file)
    if config.get("model_type", "albert") != "albert":
        raise UserError(f"{config_file} describes a {config['model_type']!r} model, not an ALBERT "
                        f"(model_type {config['model_type']!r}).")
    weight_files = _huggingface_weight_files(directory)
    digest, tensors = hashlib.sha256(), {}
    for path in weight_files:
        data = _read_bytes(path)
        digest.update(data)
        try:
            tensors.update(safetensors.numpy.load(data))
        except (safetensors.SafetensorError, ValueError, TypeError) as e:  # numpy has no bfloat16, e.g.
            raise UserError(f"Cannot read {path}: {str(e).splitlines()[0][:200]}") from None
    tokenizer_file = sentencepiece_model or join(directory, HF_TOKENIZER)
    return Checkpoint(
        source=directory, source_format=spec.SOURCE_HUGGINGFACE, config_file=config_file,
        backbone=backbone_arguments(config, config_file, spec.SOURCE_HUGGINGFACE),
        shapes={name: tuple(value.shape) for name, value in tensors.items()}, read=tensors.__getitem__,
        weights_sha256=digest.hexdigest(), tokenizer_model=_read_tokenizer(tokenizer_file),
        tokenizer_file=tokenizer_file)


def _huggingface_weight_files(directory: str) -> list[str]:
    single, index = join(directory, HF_WEIGHTS), join(directory, HF_WEIGHTS_INDEX)
    if tf.io.gfile.exists(single):
        return [single]
    if tf.io.gfile.exists(index):
        shards = _read_json(index).get("weight_map", {}).values()
        return [join(directory, name) for name in sorted(set(shards))]
    other = [name for name in ("pytorch_model.bin", "tf_model.h5") if tf.io.gfile.exists(join(directory, name))]
    hint = f" (it has {other[0]}: save the model with safetensors, e.g. save_pretrained())" if other else ""
    raise UserError(f"{directory} has no {HF_WEIGHTS}{hint}.")


def _read_tf1(source: str, sentencepiece_model: str | None) -> Checkpoint:
    prefix = _tf1_prefix(source)
    directory = posixpath.dirname(prefix) or "."
    config_file = join(directory, TF1_CONFIG)
    if not tf.io.gfile.exists(config_file):
        raise UserError(f"The TF1 checkpoint {source} has no {TF1_CONFIG} beside it.")
    config = _read_json(config_file)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"Cannot read the TF1 checkpoint {prefix}: {str(e).splitlines()[0][:200]}") from None
    digest = hashlib.sha256()
    for path in sorted(tf.io.gfile.glob(f"{prefix}.index") + tf.io.gfile.glob(f"{prefix}.data-*")):
        digest.update(_read_bytes(path))
    tokenizer_file = sentencepiece_model or _tf1_tokenizer_file(directory, source)
    return Checkpoint(
        source=source, source_format=spec.SOURCE_TF1, config_file=config_file,
        backbone=backbone_arguments(config, config_file, spec.SOURCE_TF1),
        shapes={name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()},
        read=reader.get_tensor, weights_sha256=digest.hexdigest(), tokenizer_model=_read_tokenizer(tokenizer_file),
        tokenizer_file=tokenizer_file)


def _tf1_prefix(source: str) -> str:
    """The checkpoint prefix `source` names: itself, or the one checkpoint in the directory `source`."""
    if not tf.io.gfile.isdir(source):
        if not tf.io.gfile.exists(f"{source}.index"):
            raise UserError(f"{source} is not a TF1 checkpoint: there is no {source}.index.")
        return source
    prefixes = sorted(path[: -len(".index")] for path in tf.io.gfile.glob(join(source, "*.index")))
    if len(prefixes) == 1:
        return prefixes[0]
    latest = tf.train.latest_checkpoint(source)  # needs the "checkpoint" state file
    if latest:
        return latest
    if not prefixes:
        raise UserError(f"{source} holds no TF1 checkpoint (no *.index file).")
    raise UserError(f"{source} holds several TF1 checkpoints ({', '.join(map(posixpath.basename, prefixes))}); "
                    f"pass the prefix of one as --checkpoint.")


def _tf1_tokenizer_file(directory: str, source: str) -> str:
    models = sorted(tf.io.gfile.glob(join(directory, "*.model")))
    if len(models) == 1:
        return models[0]
    found = f"several ({', '.join(map(posixpath.basename, models))})" if models else "none"
    raise UserError(f"The TF1 checkpoint {source} needs its SentencePiece model: {found} found beside it; "
                    f"pass --sentencepiece-model PATH.")


def _read_tokenizer(path: str) -> bytes:
    if not tf.io.gfile.exists(path):
        raise UserError(f"SentencePiece model {path} not found; pass --sentencepiece-model PATH.")
    return _read_bytes(path)


def backbone_arguments(config: dict, config_file: str, source_format: str) -> dict:
    """keras_hub.models.AlbertBackbone's arguments from an ALBERT config (Hugging Face or TF1 names).

    Raises UserError naming the setting for anything the backbone cannot compute as configured.
    """
    def integer(key: str) -> int:
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{config_file}: {key} must be a positive integer. Received: {key}={value!r}")
        return value

    arguments = {
        "vocabulary_size": integer("vocab_size"),
        "num_layers": integer("num_hidden_layers"),
        "num_heads": integer("num_attention_heads"),
        "embedding_dim": integer("embedding_size"),
        "hidden_dim": integer("hidden_size"),
        "intermediate_dim": integer("intermediate_size"),
        "num_groups": integer("num_hidden_groups"),
        "num_inner_repetitions": integer("inner_group_num"),
        "max_sequence_length": integer("max_position_embeddings"),
        "num_segments": integer("type_vocab_size"),
        "dropout": float(config.get("hidden_dropout_prob", 0.0)),
    }
    if arguments["num_layers"] % arguments["num_groups"]:
        raise UserError(f"{config_file}: num_hidden_layers must be divisible by num_hidden_groups. "
                        f"Received: num_hidden_layers={arguments['num_layers']}, "
                        f"num_hidden_groups={arguments['num_groups']}")
    if arguments["hidden_dim"] % arguments["num_heads"]:
        raise UserError(f"{config_file}: hidden_size must be divisible by num_attention_heads. "
                        f"Received: hidden_size={arguments['hidden_dim']}, "
                        f"num_attention_heads={arguments['num_heads']}")
    activation = config.get("hidden_act", "gelu_new")
    if activation == "gelu" and source_format == spec.SOURCE_HUGGINGFACE:
        logging.warning("%s says hidden_act 'gelu' (exact); the backbone computes the tanh approximation, as "
                        "the original ALBERT code did for every published checkpoint.", config_file)
    elif activation not in _TANH_GELU[source_format]:
        raise UserError(f"{config_file}: hidden_act {activation!r} is not supported; the backbone computes "
                        f"the tanh approximation of GELU.")
    epsilon = config.get("layer_norm_eps", _LAYER_NORM_EPSILON)
    if not np.isclose(epsilon, _LAYER_NORM_EPSILON, rtol=1e-3, atol=0):
        raise UserError(f"{config_file}: layer_norm_eps {epsilon!r} is not supported; the backbone uses "
                        f"{_LAYER_NORM_EPSILON}.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{config_file}: position_embedding_type {config['position_embedding_type']!r} is not "
                        f"supported; the backbone learns absolute positions.")
    for key, default in (("net_structure_type", 0), ("gap_size", 0), ("num_memory_blocks", 0),
                         ("down_scale_factor", 1)):  # original-code variants never published
        if config.get(key, default) != default:
            raise UserError(f"{config_file}: {key} {config[key]!r} is not supported (only {default}).")
    return arguments
