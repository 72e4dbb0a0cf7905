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

# --- Tasks of the preprocessing stage (stats.json "task"). ---
TASK_CLASSIFY = "classify"  # labelled documents → padded token ids + label ids (model.trainer)
TASK_PRETRAIN = "pretrain"  # unlabelled documents → segment pairs (model.pretrain)
TASKS = (TASK_CLASSIFY, TASK_PRETRAIN)

# --- Segment pairs of the pretrain task, as written to the TFRecords (one tf.Example per pair). ---
# `[CLS] A [SEP] B [SEP]`, unpadded: at most max_seq_length ids; A and B are consecutive spans of
# one document's sentences; B comes first in the document when the pair is swapped.
PAIR_TOKEN_IDS = "token_ids"  # int64 [length]
PAIR_SEGMENT_IDS = "segment_ids"  # int64 [length]: 0 for [CLS] A [SEP], 1 for B [SEP]
SENTENCE_ORDER = "sentence_order"  # int64 scalar: 0 = A then B as in the document, 1 = swapped
TOKENIZER_MODEL_FILE = "spiece.model"  # the pretrain task's SentencePiece model, in its output directory
