"""The prediction record every scoring output holds, and its declared Arrow schema for Parquet."""

import pyarrow as pa

ID = "id"
LABEL = "label"  # the top label
LABELS = "labels"  # multi-label: the labels over the threshold
SCORE = "score"  # probability of the top label
PROBABILITIES = "probabilities"  # label name → probability
MODEL_VERSION = "model_version"
TRUE_LABEL = "true_label"  # when the input had labels

PREDICTION_COLUMNS = (ID, LABEL, LABELS, SCORE, PROBABILITIES, MODEL_VERSION, TRUE_LABEL)

SUMMARY_FILE = "summary.json"
EVALUATION_FILE = "evaluation.json"
PREDICTIONS_PREFIX = "predictions"

def prediction_arrow_schema(multi_label: bool, keep_fields: tuple[str, ...]) -> pa.Schema:
    """Columns of predictions-*.parquet; `true_label` is null for unlabelled documents; kept input
    fields follow as strings."""
    fields = [
        (ID, pa.string()),
        (LABEL, pa.string()),
        (SCORE, pa.float32()),
        (PROBABILITIES, pa.map_(pa.string(), pa.float32())),
        (MODEL_VERSION, pa.string()),
        (TRUE_LABEL, pa.string()),
    ]
    if multi_label:
        fields.insert(2, (LABELS, pa.list_(pa.string())))
    fields += [(name, pa.string()) for name in keep_fields]
    return pa.schema(fields)
