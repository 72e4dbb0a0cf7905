"""The raw-text SavedModel: tf.Transform graph + Keras classifier + label names, in one export.

Every name a caller reads (signatures, their input and outputs, the files in assets.extra/ and
the keys of export.json) is `schemas.export_contract`'s; the scorer reads the same constants.

Both signatures take `text: tf.string [None]` and return `probabilities: float32 [None, L]`,
`label: string [None]` and `score: float32 [None]` (the top label and its probability); multi-label
exports also return `labels: string [None]`, the names over the threshold joined by
`LABEL_SEPARATOR`.

- The dynamic signature (`serving_default`) feeds the model only as many token columns as the
  longest document of the batch has, so a batch of short documents costs what short documents cost.
- The fixed-length signature feeds the model all `max_seq_length` columns: a static shape for
  accelerators and XLA, and the baseline the dynamic signature is measured against.

Tokenization is the same in both and both encoders mask padding, so they give the same outputs.
export.json maps each `score.padding` mode to its signature.
Loading it needs only `tensorflow` and `import tensorflow_text` (the tokenizer ops).
"""

from __future__ import annotations

import json
import logging
import time

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer/normalizer ops the transform graph uses)
import tensorflow_transform as tft

from model.filesystem import join, move_directory, write_text
from model.padding import trim_trailing_padding
from schemas import config as config_lib
from schemas import export_contract as contract
from schemas import features

SIGNATURE_BY_PADDING = {config_lib.PADDING_LONGEST: contract.DYNAMIC_SIGNATURE,
                        config_lib.PADDING_MAX_LENGTH: contract.FIXED_LENGTH_SIGNATURE}
_TEXT_SPEC = tf.TensorSpec([None], tf.string, name=contract.TEXT_INPUT)


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

    @tf.function(input_signature=[_TEXT_SPEC])
    def serve(self, text):
        """Dynamic padding: the model sees (B, T), T the longest document of this batch."""
        return self._predict(text, trim_padding=True)

    @tf.function(input_signature=[_TEXT_SPEC])
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
            contract.PROBABILITIES_OUTPUT: probabilities,
            contract.LABEL_OUTPUT: tf.gather(self.label_names, top),
            contract.SCORE_OUTPUT: tf.reduce_max(probabilities, axis=-1),
        }
        if self.multi_label:
            names = tf.broadcast_to(self.label_names, tf.shape(probabilities))
            chosen = tf.ragged.boolean_mask(names, probabilities >= self.threshold)
            outputs[contract.LABELS_OUTPUT] = tf.strings.reduce_join(chosen, axis=-1,
                                                                     separator=contract.LABEL_SEPARATOR)
        return outputs


def export_metadata(version: str, label_names: list[str], multi_label: bool, threshold: float) -> dict:
    """The content of export.json."""
    return {contract.METADATA_VERSION: version, contract.METADATA_MULTI_LABEL: multi_label,
            contract.METADATA_THRESHOLD: threshold, contract.METADATA_LABEL_NAMES: label_names,
            contract.METADATA_SIGNATURES: SIGNATURE_BY_PADDING}


def export_model(model, data_dir: str, model_dir: str, label_names: list[str], multi_label: bool,
                 threshold: float, config_json: str, version: int | str | None = None) -> str:
    """Writes MODEL_DIR/export/<version>/ (atomically, by rename) and returns its path.

    `version` (digits; default: the current Unix time) names the directory and is written to
    export.json as a string, the model version every prediction carries.
    """
    version = str(version or int(time.time()))
    if not version.isdigit():
        raise ValueError(f"`version` must be a string of digits. Received: version={version!r}")
    final_dir = join(model_dir, contract.EXPORT_DIR, version)
    staging_dir = join(model_dir, contract.EXPORT_DIR, f".staging-{version}")
    if tf.io.gfile.exists(staging_dir):
        tf.io.gfile.rmtree(staging_dir)
    serving = TextClassifierServing(model, tft.TFTransformOutput(data_dir), label_names, multi_label, threshold)
    signatures = {contract.DYNAMIC_SIGNATURE: serving.serve, contract.FIXED_LENGTH_SIGNATURE: serving.serve_fixed_length}
    tf.saved_model.save(serving, staging_dir, signatures=signatures)
    write_text(join(staging_dir, contract.EXPORT_CONFIG_FILE), config_json)
    write_text(join(staging_dir, contract.LABELS_FILE), "".join(name + "\n" for name in label_names))
    metadata = export_metadata(version, label_names, multi_label, threshold)
    write_text(join(staging_dir, contract.EXPORT_METADATA), json.dumps(metadata, indent=2) + "\n")
    move_directory(staging_dir, final_dir)
    logging.info("Exported the raw-text model to %s", final_dir)
    return final_dir


def latest_export(model_dir: str) -> str | None:
    """The newest numbered export under MODEL_DIR/export/, or None."""
    root = join(model_dir, contract.EXPORT_DIR)
    if not tf.io.gfile.isdir(root):
        return None
    versions = [name.strip("/") for name in tf.io.gfile.listdir(root) if name.strip("/").isdigit()]
    return join(root, max(versions, key=int)) if versions else None
