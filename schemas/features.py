"""Feature keys and constants shared by preprocessing, the model and scoring.

Nothing else in the project spells these strings: import them from here.
"""

# --- Raw (pre-transform) document fields, as they enter tf.Transform. ---
TEXT = "text"
LABEL = "label"

# --- Transformed features, as written to the TFRecords. ---
TOKEN_IDS = "token_ids"  # int64 [max_seq_length], PAD_ID after the last token
LABEL_ID = "label_id"  # int64 scalar (single-label tasks)
LABEL_MULTI_HOT = "label_multi_hot"  # float32 [num_labels] (multi-label tasks)
SEQUENCE_LENGTH = "sequence_length"  # int64 scalar: tokens before padding/truncation cut-off

# --- Token ids. ---
PAD_ID = 0  # reserved for padding in both tokenizers
PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
WORDPIECE_SUFFIX = "##"

# --- Vocabulary names in transform_fn/: `TFTransformOutput.vocabulary_file_by_name(NAME)`. ---
TOKEN_VOCABULARY = "token_vocabulary"
LABEL_VOCABULARY = "label_vocabulary"

# --- Output layout of the preprocessing stage. ---
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
REJECTED_DIR = "rejected"
STATS_FILE = "stats.json"
CONFIG_FILE = "config.json"
SUCCESS_MARKER = "_SUCCESS"
TFRECORD_SUFFIX = ".tfrecord.gz"

TOKENIZERS = ("word", "wordpiece", "sentencepiece")
