"""Which tensor of a published ALBERT checkpoint holds which variable of keras-hub's AlbertBackbone.

Two naming schemes are mapped: Hugging Face `transformers` (`albert.` prefix optional; torch
`Linear` weights are [out, in]) and google-research/albert's TF1 checkpoints (kernels [in, out]).
keras-hub's attention projections keep the heads apart: query/key/value kernels are
(H, heads, H / heads), the output kernel (heads, H / heads, H).

`assign_weights` puts every backbone variable's value in place exactly once from the source tensors,
and accounts for every source tensor: used, or ignored by name (task heads, optimizer slots).
A missing tensor, an unknown one or a shape other than the config implies is a UserError naming it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Callable, Mapping

import keras_hub
import numpy as np

from schemas import pretrained as spec
from schemas.errors import UserError

HUGGINGFACE_PREFIX = "albert."
# Tensors a checkpoint may hold beside the backbone: task heads and buffers (Hugging Face), the
# pretraining heads, optimizer slots and step counter (TF1).
_IGNORED = {
    spec.SOURCE_HUGGINGFACE: re.compile(r"(classifier|predictions|sop_classifier)\..*|.*\.position_ids"),
    spec.SOURCE_TF1: re.compile(r"cls/.*|global_step|.*/adam_[mv]"),
}

# How a source tensor becomes the variable's value.
COPY = "copy"  # same shape in every format: embeddings, biases, layer-norm parameters
DENSE = "dense"  # Keras kernel (in, out)
HEADS_IN = "heads_in"  # query/key/value kernel (H, heads, head_dim)
HEADS_IN_BIAS = "heads_in_bias"  # query/key/value bias (heads, head_dim)
HEADS_OUT = "heads_out"  # attention output kernel (heads, head_dim, H)
_LINEAR = (DENSE, HEADS_IN, HEADS_OUT)  # torch Linear weights: [out, in]


@dataclasses.dataclass(frozen=True)
class Slot:
    """One backbone variable and its tensor's name in each format."""

    huggingface: str  # without the "albert." prefix
    tf1: str
    variable: object  # a keras.Variable of the backbone
    layout: str

    def source_name(self, source_format: str, prefix: str = "") -> str:
        return prefix + self.huggingface if source_format == spec.SOURCE_HUGGINGFACE else self.tf1

    def source_shape(self, source_format: str) -> tuple[int, ...]:
        """The shape the tensor must have in `source_format` to fill this slot's variable."""
        shape = tuple(self.variable.shape)
        if self.layout == COPY:
            return shape
        if self.layout == HEADS_IN_BIAS:
            return (shape[0] * shape[1],)
        if self.layout == HEADS_IN:
            shape = (shape[0], shape[1] * shape[2])
        elif self.layout == HEADS_OUT:
            shape = (shape[0] * shape[1], shape[2])
        rows, columns = shape  # [in, out]
        return (columns, rows) if source_format == spec.SOURCE_HUGGINGFACE else (rows, columns)

    def value(self, tensor: np.ndarray, source_format: str) -> np.ndarray:
        if source_format == spec.SOURCE_HUGGINGFACE and self.layout in _LINEAR:
            tensor = tensor.T
        return np.reshape(tensor, tuple(self.variable.shape))


def _pair(huggingface: str, tf1: str, layer, layout: str, weight: str = "kernel", bias: str = "bias") -> list[Slot]:
    """Slots of a layer's kernel-like weight and its bias (names: torch's "weight"/"bias")."""
    bias_layout = HEADS_IN_BIAS if layout == HEADS_IN else COPY
    return [Slot(f"{huggingface}.weight", f"{tf1}/{weight}", getattr(layer, weight), layout),
            Slot(f"{huggingface}.bias", f"{tf1}/{bias}", getattr(layer, bias), bias_layout)]


def _layer_norm(huggingface: str, tf1: str, layer) -> list[Slot]:
    return [Slot(f"{huggingface}.weight", f"{tf1}/gamma", layer.gamma, COPY),
            Slot(f"{huggingface}.bias", f"{tf1}/beta", layer.beta, COPY)]


def backbone_slots(backbone: keras_hub.models.AlbertBackbone) -> tuple[list[Slot], list[Slot]]:
    """(slots of every backbone variable but the pooler's, the pooler's two slots)."""
    slots = [
        Slot("embeddings.word_embeddings.weight", "bert/embeddings/word_embeddings",
             backbone.token_embedding.embeddings, COPY),
        Slot("embeddings.position_embeddings.weight", "bert/embeddings/position_embeddings",
             backbone.position_embedding.position_embeddings, COPY),
        Slot("embeddings.token_type_embeddings.weight", "bert/embeddings/token_type_embeddings",
             backbone.segment_embedding.embeddings, COPY),
        *_layer_norm("embeddings.LayerNorm", "bert/embeddings/LayerNorm", backbone.embeddings_layer_norm),
        *_pair("encoder.embedding_hidden_mapping_in", "bert/encoder/embedding_hidden_mapping_in",
               backbone.embeddings_projection, DENSE),
    ]
    for group in range(backbone.num_groups):
        for inner in range(backbone.num_inner_repetitions):
            block = backbone.get_layer(f"group_{group}_inner_layer_{inner}")
            attention = block._self_attention_layer
            hf = f"encoder.albert_layer_groups.{group}.albert_layers.{inner}"
            tf1 = f"bert/encoder/transformer/group_{group}/inner_group_{inner}"
            slots += [
                *_pair(f"{hf}.attention.query", f"{tf1}/attention_1/self/query", attention.query_dense, HEADS_IN),
                *_pair(f"{hf}.attention.key", f"{tf1}/attention_1/self/key", attention.key_dense, HEADS_IN),
                *_pair(f"{hf}.attention.value", f"{tf1}/attention_1/self/value", attention.value_dense, HEADS_IN),
                *_pair(f"{hf}.attention.dense", f"{tf1}/attention_1/output/dense", attention.output_dense, HEADS_OUT),
                *_layer_norm(f"{hf}.attention.LayerNorm", f"{tf1}/LayerNorm", block._self_attention_layer_norm),
                *_pair(f"{hf}.ffn", f"{tf1}/ffn_1/intermediate/dense", block._feedforward_intermediate_dense, DENSE),
                *_pair(f"{hf}.ffn_output", f"{tf1}/ffn_1/intermediate/output/dense",
                       block._feedforward_output_dense, DENSE),
                *_layer_norm(f"{hf}.full_layer_layer_norm", f"{tf1}/LayerNorm_1", block._feedforward_layer_norm),
            ]
    pooler = _pair("pooler", "bert/pooler/dense", backbone.pooled_dense, DENSE)
    return slots, pooler


def huggingface_prefix(names) -> str:
    """"albert." when the checkpoint's backbone tensors carry it (a task model's save), else ""."""
    return HUGGINGFACE_PREFIX if any(name.startswith(HUGGINGFACE_PREFIX) for name in names) else ""


@dataclasses.dataclass(frozen=True)
class Assignment:
    tensors_used: int
    tensors_ignored: int
    pooler: str  # spec.POOLER_IMPORTED or spec.POOLER_INITIALIZED


def assign_weights(backbone: keras_hub.models.AlbertBackbone, shapes: Mapping[str, tuple[int, ...]],
                   read: Callable[[str], np.ndarray], source_format: str, source: str,
                   config_file: str) -> Assignment:
    """Assigns the tensors of a `source_format` checkpoint to `backbone`'s variables.

    `shapes` maps every tensor name of the checkpoint to its shape; `read(name)` returns a tensor's
    value (read only for the tensors used, so optimizer slots are never loaded).

    A checkpoint without both pooler tensors keeps the backbone's freshly initialized pooler.
    Raises UserError, before assigning anything, for a missing backbone tensor, a tensor that is
    neither used nor known to be ignorable, or a shape other than `config_file` implies.
    """
    slots, pooler = backbone_slots(backbone)
    _check_covers_every_variable(backbone, slots + pooler)
    prefix = huggingface_prefix(shapes) if source_format == spec.SOURCE_HUGGINGFACE else ""
    present = [slot.source_name(source_format, prefix) in shapes for slot in pooler]
    if all(present):
        slots += pooler
    elif any(present):
        missing = pooler[present.index(False)].source_name(source_format, prefix)
        raise UserError(f"The checkpoint {source} has no tensor {missing} (it has the rest of the pooler).")
    used = {slot.source_name(source_format, prefix): slot for slot in slots}
    for name, slot in used.items():
        if name not in shapes:
            raise UserError(f"The checkpoint {source} has no tensor {name}, which the backbone that "
                            f"{config_file} describes needs.")
        shape, expected = tuple(shapes[name]), slot.source_shape(source_format)
        if shape != expected:
            raise UserError(f"Tensor {name} of {source} has shape {list(shape)}, but {config_file} implies "
                            f"{list(expected)}.")
    ignored = [name for name in shapes if name not in used and _IGNORED[source_format].fullmatch(name)]
    unknown = sorted(set(shapes) - set(used) - set(ignored))
    if unknown:
        raise UserError(f"The checkpoint {source} has a tensor this importer does not know: {unknown[0]}"
                        f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}.")
    for name, slot in used.items():
        slot.variable.assign(slot.value(np.asarray(read(name), dtype="float32"), source_format))
    if ignored:
        logging.info("Ignored %d tensors that are not part of the backbone (heads, optimizer state), e.g. %s.",
                     len(ignored), sorted(ignored)[0])
    return Assignment(tensors_used=len(used), tensors_ignored=len(ignored),
                      pooler=spec.POOLER_IMPORTED if all(present) else spec.POOLER_INITIALIZED)


def _check_covers_every_variable(backbone, slots: list[Slot]) -> None:
    """Every backbone variable has exactly one slot (a keras-hub release that changed its layers
    would otherwise leave some at their random initial values)."""
    by_variable = [id(slot.variable) for slot in slots]
    variables = [id(variable) for variable in backbone.weights]
    if sorted(by_variable) != sorted(variables):
        raise AssertionError(f"The checkpoint mapping covers {len(set(by_variable) & set(variables))} of the "
                             f"backbone's {len(variables)} variables ({len(by_variable)} slots).")
