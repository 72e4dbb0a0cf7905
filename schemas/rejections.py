"""Why a record could not be used. Shared by preprocessing and scoring.

Every rejected record is written as one JSON object with at least `reason` and `source`
(`path:line` for line-based formats, `path#index` for record-based ones, the file path for
text dirs), plus a short `detail` and, where it helps, a truncated copy of the `record`.
"""

UNREADABLE_FILE = "unreadable_file"  # the file itself could not be opened or decoded as its format
UNPARSABLE_RECORD = "unparsable_record"  # a line/row that is not valid JSON, CSV, tf.Example, ...
MISSING_TEXT = "missing_text"
EMPTY_TEXT = "empty_text"
MISSING_LABEL = "missing_label"
MISSING_ID = "missing_id"
INVALID_UTF8 = "invalid_utf8"
WRONG_TYPE = "wrong_type"  # a field holds a number, list, ... where a string is needed
UNKNOWN_LABEL = "label_not_in_training_split"  # eval documents whose label training never saw
INFERENCE_FAILED = "inference_failed"  # scoring: the model raised on the document's batch
TOO_SHORT_FOR_PAIR = "too_short_for_pair"  # pretrain task: fewer than 2 pieces, nothing for segment B

ALL = (
    UNREADABLE_FILE,
    UNPARSABLE_RECORD,
    MISSING_TEXT,
    EMPTY_TEXT,
    MISSING_LABEL,
    MISSING_ID,
    INVALID_UTF8,
    WRONG_TYPE,
    UNKNOWN_LABEL,
    INFERENCE_FAILED,
    TOO_SHORT_FOR_PAIR,
)

RECORD_EXCERPT_CHARS = 500  # how much of a bad record is kept, so rejected/ stays small
