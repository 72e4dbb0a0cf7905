"""The raw-text SavedModel: tf.Transform graph + Keras classifier + label names, in one export.

Both signatures take `text: tf.string [None]` and return `probabilities: float32 [None, L]`,
`label: string [None]` and `score: float32 [None]` (the top label and its probability); multi-label
exports also return `labels: string [None]`, the names over the threshold joined by ",".

- `serving_default` (dynamic padding) feeds the model only as many token columns as the longest
  document of the batch has, so a batch of short documents costs what short documents cost.
- `serving_fixed_length` feeds the model all `max_seq_length` columns: a static
  shape for accelerators and XLA, and the baseline the dynamic signature is measured against.

Tokenization is the same in both and both encoders mask padding, so they give the same outputs.
`assets.extra/export.json` maps each `score.padding` mode to its signature.
Loading it needs only `tensorflow` and `import tensorflow_text` (the tokenizer ops).
"""

from __future__ import annotations

import json
import logging
import time

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer/normalizer ops the transform graph uses)
import tensorflow_transform as tft

from model.padding import trim_trailing_padding
from schemas import config as config_lib
from schemas import features

EXPORT_DIR = "export"
ASSETS_EXTRA = "assets.extra"
LABELS_FILE = "labels.txt"
MULTI_LABEL_SEPARATOR = ","
SIGNATURE_BY_PADDING = {config_lib.PADDING_LONGEST: features.DYNAMIC_SIGNATURE,
                        config_lib.PADDING_MAX_LENGTH: features.FIXED_LENGTH_SIGNATURE}


class TextClassifierServing(tf.Module):
    """Wraps the Keras model with the transform layer (attached only here, at export)."""

    def __init__(self, model, tft_output: tft.TFTransformOutput, label_names: list[str], multi_label: bool,
                 threshold: float):
        super().__init__()
        self.model = model
        self.transform_layer = tft_output.transform_features_layer()
        self.label_names = tf.constant(label_names)
        self.multi_label = multi_label
        self.threshold = threshold

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.TEXT)])
    def serve(self, text):
        """Dynamic padding: the model sees (B, T), T the longest document of this batch."""
        return self._predict(text, trim_padding=True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.TEXT)])
    def serve_fixed_length(self, text):
        """Fixed padding: the model sees (B, max_seq_length) whatever the documents' lengths."""
        return self._predict(text, trim_padding=False)

    def _predict(self, text, trim_padding: bool):
        token_ids = self.transform_layer({features.TEXT: text})[features.TOKEN_IDS]  # (B, max_seq_length)
        if trim_padding:
            token_ids = trim_trailing_padding(token_ids)  # (B, T)
        probabilities = tf.cast(self.model(token_ids, training=False), tf.float32)
        top = tf.argmax(probabilities, axis=-1)
        outputs = {
            "probabilities": probabilities,
            "label": tf.gather(self.label_names, top),
            "score": tf.reduce_max(probabilities, axis=-1),
        }
        if self.multi_label:
            names = tf.broadcast_to(self.label_names, tf.shape(probabilities))
            chosen = tf.ragged.boolean_mask(names, probabilities >= self.threshold)
            outputs["labels"] = tf.strings.reduce_join(chosen, axis=-1, separator=MULTI_LABEL_SEPARATOR)
        return outputs


def export_model(model, data_dir: str, model_dir: str, label_names: list[str], multi_label: bool,
                 threshold: float, config_json: str, version: int | None = None) -> str:
    """Writes MODEL_DIR/export/<version>/ (atomically, by rename) and returns its path."""
    version = version or int(time.time())
    final_dir = f"{model_dir}/{EXPORT_DIR}/{version}"
    staging_dir = f"{model_dir}/{EXPORT_DIR}/.staging-{version}"
    if tf.io.gfile.exists(staging_dir):
        tf.io.gfile.rmtree(staging_dir)
    serving = TextClassifierServing(model, tft.TFTransformOutput(data_dir), label_names, multi_label, threshold)
    signatures = {features.DYNAMIC_SIGNATURE: serving.serve, features.FIXED_LENGTH_SIGNATURE: serving.serve_fixed_length}
    tf.saved_model.save(serving, staging_dir, signatures=signatures)
    extra = f"{staging_dir}/{ASSETS_EXTRA}"
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(f"{extra}/{features.CONFIG_FILE}", "w") as f:
        f.write(config_json)
    with tf.io.gfile.GFile(f"{extra}/{LABELS_FILE}", "w") as f:
        f.write("".join(name + "\n" for name in label_names))
    with tf.io.gfile.GFile(f"{extra}/export.json", "w") as f:
        f.write(json.dumps({"version": version, "multi_label": multi_label, "threshold": threshold,
                            "label_names": label_names, "signatures": SIGNATURE_BY_PADDING}, indent=2) + "\n")
    tf.io.gfile.rename(staging_dir, final_dir, overwrite=False)
    logging.info("Exported the raw-text model to %s", final_dir)
    return final_dir


def latest_export(model_dir: str) -> str | None:
    """The newest numbered export under MODEL_DIR/export/, or None."""
    root = f"{model_dir.rstrip('/')}/{EXPORT_DIR}"
    if not tf.io.gfile.isdir(root):
        return None
    versions = [int(name.strip("/")) for name in tf.io.gfile.listdir(root) if name.strip("/").isdigit()]
    return f"{root}/{max(versions)}" if versions else None
