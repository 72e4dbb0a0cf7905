"""The MLP head: a context vector → class probabilities (softmax) or per-label probabilities (sigmoid)."""

from __future__ import annotations

import keras

ACTIVATIONS = ("softmax", "sigmoid")


@keras.saving.register_keras_serializable(package="albert_pipelines")
class ClassifierHead(keras.layers.Layer):
    """Dense(relu) → [BatchNormalization] → Dropout per hidden size, then Dense → probabilities.

    The final activation runs in float32 whatever the dtype policy, so a mixed precision model
    (`mixed_bfloat16`, `mixed_float16`) still outputs float32 probabilities.

    Args:
        num_outputs: int. Number of classes (softmax) or labels (sigmoid).
        hidden_units: sequence of int. Width of each hidden layer, in order; empty for none.
        dropout: float. Dropout rate after each hidden layer.
        batch_norm: bool. Whether to batch-normalize after each hidden layer.
        activation: "softmax" for single-label classification, "sigmoid" for multi-label
            (or binary, with `num_outputs=1`).
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        context: float tensor (B, D).
        extra_logits: optional float32 tensor (B, num_outputs) added to the logits before the
            activation (the n-gram path's, `model.ngram_logits`).
        training: bool. Whether dropout is active and batch normalization uses batch statistics.

    Returns:
        float32 tensor (B, num_outputs).
    """

    def __init__(self, num_outputs: int, hidden_units=(128,), dropout: float = 0.1, batch_norm: bool = False,
                 activation: str = "softmax", **kwargs):
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {ACTIVATIONS}. Received: activation={activation!r}")
        super().__init__(**kwargs)
        hidden_units = tuple(hidden_units)

        # === Layers ===
        self.hidden_layers = []
        for i, units in enumerate(hidden_units):
            self.hidden_layers.append(
                keras.layers.Dense(units, activation="relu", dtype=self.dtype_policy, name=f"hidden_{i}"))
            if batch_norm:
                self.hidden_layers.append(
                    keras.layers.BatchNormalization(dtype=self.dtype_policy, name=f"batch_norm_{i}"))
            self.hidden_layers.append(keras.layers.Dropout(dropout, dtype=self.dtype_policy, name=f"dropout_{i}"))
        self.logits = keras.layers.Dense(num_outputs, dtype=self.dtype_policy, name="logits")
        self.probabilities = keras.layers.Activation(activation, dtype="float32", name="probabilities")

        # === Config ===
        self.num_outputs = num_outputs
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.activation = activation

    def build(self, input_shape):
        shape = tuple(input_shape)  # (B, D)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.logits.build(shape)
        self.built = True

    def call(self, context, extra_logits=None, training=None):
        x = context  # (B, D)
        for layer in self.hidden_layers:
            x = layer(x, training=training)  # (B, units)
        logits = self.logits(x)  # (B, num_outputs)
        if extra_logits is not None:
            logits = keras.ops.cast(logits, "float32") + extra_logits
        return self.probabilities(logits)  # (B, num_outputs), float32

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_outputs": self.num_outputs,
            "hidden_units": list(self.hidden_units),
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
            "activation": self.activation,
        })
        return config
