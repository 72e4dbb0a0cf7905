"""The pretraining model: keras-hub's AlbertBackbone with a masked-LM head and a sentence-order head.

The masked-LM head is keras-hub's, built as keras_hub.models.AlbertMaskedLM builds it: a dense
layer (gelu) and layer norm, then logits against the word embeddings (tied: no output matrix of
its own). The sentence-order head is a Dense(2) on the backbone's pooled_output (the tanh pooler
on [CLS]), so pretraining also trains the pooler that fine-tuning starts from.
"""

from __future__ import annotations

import keras
import keras_hub
from keras_hub.src.models.albert.albert_backbone import albert_kernel_initializer
from keras_hub.src.utils.keras_utils import gelu_approximate

from model.optimization import scheduled_optimizer
from model.pretrained_encoder import load_backbone_weights, read_encoder_config
from model.pretraining_data import MASK_POSITIONS, MLM_OUTPUT, PADDING_MASK, SOP_OUTPUT
from schemas import features
from schemas.config import AlbertConfig, PretrainConfig

FROM_SCRATCH_LEARNING_RATE = 5e-4  # ALBERT-sized models from scratch (the paper: LAMB at 1.76e-3, batch 4096)
CONTINUED_LEARNING_RATE = 1e-4  # domain-adaptive pretraining of a published checkpoint


def build_backbone(albert: AlbertConfig, vocab_size: int, max_seq_length: int, dropout: float
                   ) -> keras_hub.models.AlbertBackbone:
    """A freshly initialized backbone of `albert`'s sizes."""
    return keras_hub.models.AlbertBackbone(
        vocabulary_size=vocab_size, num_layers=albert.num_layers, num_heads=albert.num_heads,
        embedding_dim=albert.embedding_dim, hidden_dim=albert.hidden_dim, intermediate_dim=albert.intermediate_dim,
        num_groups=albert.num_groups, num_inner_repetitions=albert.num_inner_repetitions,
        max_sequence_length=max_seq_length, dropout=dropout)


def load_pretrained_backbone(directory: str, dropout: float) -> keras_hub.models.AlbertBackbone:
    """The backbone of a pretrained-encoder directory, with its weights and the given dropout."""
    backbone = keras_hub.models.AlbertBackbone(**{**read_encoder_config(directory)["backbone"], "dropout": dropout})
    load_backbone_weights(backbone, directory)
    return backbone


def build_pretraining_model(backbone: keras_hub.models.AlbertBackbone) -> keras.Model:
    """inputs: token_ids, segment_ids, padding_mask [B, T], mask_positions [B, P];
    outputs: {"mlm": logits [B, P, vocab], "sop": logits [B, 2]} (float32 under mixed precision)."""
    inputs = {
        features.PAIR_TOKEN_IDS: keras.Input(shape=(None,), dtype="int32", name=features.PAIR_TOKEN_IDS),
        features.PAIR_SEGMENT_IDS: keras.Input(shape=(None,), dtype="int32", name=features.PAIR_SEGMENT_IDS),
        PADDING_MASK: keras.Input(shape=(None,), dtype="int32", name=PADDING_MASK),
        MASK_POSITIONS: keras.Input(shape=(None,), dtype="int32", name=MASK_POSITIONS),
    }
    outputs = backbone({"token_ids": inputs[features.PAIR_TOKEN_IDS],
                        "segment_ids": inputs[features.PAIR_SEGMENT_IDS],
                        "padding_mask": inputs[PADDING_MASK]})
    mlm_head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=backbone.vocabulary_size, token_embedding=backbone.token_embedding,
        intermediate_activation=gelu_approximate, kernel_initializer=albert_kernel_initializer(),
        dtype=backbone.dtype_policy, name="mlm_head")
    sop_head = keras.layers.Dense(2, kernel_initializer=albert_kernel_initializer(), dtype=backbone.dtype_policy,
                                  name="sop_head")
    # Logits in float32: the softmax cross-entropy over the vocabulary is where float16 overflows.
    mlm = keras.layers.Activation("linear", dtype="float32", name=MLM_OUTPUT)(
        mlm_head(outputs["sequence_output"], inputs[MASK_POSITIONS]))
    sop = keras.layers.Activation("linear", dtype="float32", name=SOP_OUTPUT)(sop_head(outputs["pooled_output"]))
    return keras.Model(inputs, {MLM_OUTPUT: mlm, SOP_OUTPUT: sop}, name="albert_pretraining")


def peak_learning_rate(settings: PretrainConfig) -> float:
    if settings.learning_rate is not None:
        return settings.learning_rate
    return CONTINUED_LEARNING_RATE if settings.init_from else FROM_SCRATCH_LEARNING_RATE


def make_optimizer(settings: PretrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    return scheduled_optimizer(peak_learning_rate(settings), total_steps, warmup_fraction=settings.warmup_fraction,
                               weight_decay=settings.weight_decay, clip_norm=settings.clip_norm,
                               lamb=settings.optimizer == "lamb")


def compile_pretraining_model(model: keras.Model, settings: PretrainConfig, jit_compile: bool, total_steps: int
                              ) -> None:
    """Loss = masked-LM cross-entropy averaged over the real predictions + sentence-order cross-entropy."""
    model.compile(
        optimizer=make_optimizer(settings, total_steps),
        loss={MLM_OUTPUT: keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                     reduction="mean_with_sample_weight"),
              SOP_OUTPUT: keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
        weighted_metrics={MLM_OUTPUT: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                          SOP_OUTPUT: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
        jit_compile=jit_compile)
