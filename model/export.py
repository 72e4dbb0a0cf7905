"""The raw-text SavedModel: tf.Transform graph + Keras classifier + label names, in one export.

`serving_default` takes `text: tf.string [None]` and returns `probabilities: float32 [None, L]`,
`label: string [None]` and `score: float32 [None]` (the top label and its probability); multi-label
exports also return `labels: string [None]`, the names over the threshold joined by ",".
Loading it needs only `tensorflow` and `import tensorflow_text` (the tokenizer ops).
"""

from __future__ import annotations

import json
import logging
import time

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer/normalizer ops the transform graph uses)
import tensorflow_transform as tft

from schemas import features

EXPORT_DIR = "export"
ASSETS_EXTRA = "assets.extra"
LABELS_FILE = "labels.txt"
MULTI_LABEL_SEPARATOR = ","


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
        transformed = self.transform_layer({features.TEXT: text})
        probabilities = tf.cast(self.model(transformed[features.TOKEN_IDS], training=False), tf.float32)
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
    tf.saved_model.save(serving, staging_dir, signatures={"serving_default": serving.serve})
    extra = f"{staging_dir}/{ASSETS_EXTRA}"
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(f"{extra}/{features.CONFIG_FILE}", "w") as f:
        f.write(config_json)
    with tf.io.gfile.GFile(f"{extra}/{LABELS_FILE}", "w") as f:
        f.write("".join(name + "\n" for name in label_names))
    with tf.io.gfile.GFile(f"{extra}/export.json", "w") as f:
        f.write(json.dumps({"version": version, "multi_label": multi_label, "threshold": threshold,
                            "label_names": label_names}, indent=2) + "\n")
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
