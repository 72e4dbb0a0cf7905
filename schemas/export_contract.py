"""The contract between the trainer's raw-text export and everything that serves it.

The trainer writes these names (model/export.py); the scorer and any other caller read them
(pipelines/). Both import them from here, so neither wing spells them itself.

    MODEL_DIR/export/<version>/            a SavedModel
        assets.extra/export.json           EXPORT_METADATA: version, task, labels, signatures
        assets.extra/labels.txt            one label name a line
        assets.extra/config.json           the job config it was trained with
"""

from __future__ import annotations

EXPORT_DIR = "export"  # MODEL_DIR/export/<version>/
ASSETS_EXTRA = "assets.extra"
EXPORT_METADATA = f"{ASSETS_EXTRA}/export.json"
LABELS_FILE = f"{ASSETS_EXTRA}/labels.txt"
EXPORT_CONFIG_FILE = f"{ASSETS_EXTRA}/config.json"

# --- Keys of export.json. ---
METADATA_VERSION = "version"  # the model version every prediction carries (a string of digits)
METADATA_MULTI_LABEL = "multi_label"
METADATA_THRESHOLD = "threshold"
METADATA_LABEL_NAMES = "label_names"
METADATA_SIGNATURES = "signatures"  # score.padding mode → signature name

# --- Signatures: input and outputs. ---
DYNAMIC_SIGNATURE = "serving_default"  # batches padded to their longest document
FIXED_LENGTH_SIGNATURE = "serving_fixed_length"  # batches padded to max_seq_length
TEXT_INPUT = "text"  # tf.string [None]
PROBABILITIES_OUTPUT = "probabilities"  # float32 [None, num_labels]
LABEL_OUTPUT = "label"  # string [None]: the top label
SCORE_OUTPUT = "score"  # float32 [None]: its probability
LABELS_OUTPUT = "labels"  # multi-label: string [None], the names over the threshold joined by LABEL_SEPARATOR

# Multi-label labels in one string: in the export's `labels` output, in the corpus's label field
# (corpus.label_separator's default) and in CSV prediction rows. Readers that need exact names
# (the scorer) use the probabilities and export.json's label names and threshold instead.
LABEL_SEPARATOR = ","
