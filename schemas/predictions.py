"""The prediction record every scoring output holds, and its declared Arrow schema for Parquet.

Labels keep their exact names end to end: a multi-label model's `labels` and `true_label` are
lists (JSON arrays in JSON Lines, list<string> in Parquet, a JSON array in a CSV cell), never
names joined by a separator, so a label that contains the separator stays one label.
"""

import pyarrow as pa

ID = "id"
SOURCE = "source"  # where the document was read (`path:line`, `path#index`): tells duplicate ids apart
LABEL = "label"  # the top label
LABELS = "labels"  # multi-label: the labels whose probability reaches the export's threshold
SCORE = "score"  # probability of the top label
PROBABILITIES = "probabilities"  # label name → probability
MODEL_VERSION = "model_version"  # the export's version, from its export.json
TRUE_LABEL = "true_label"  # when the input had labels: a string, or a list for multi-label models

PREDICTION_COLUMNS = (ID, SOURCE, LABEL, LABELS, SCORE, PROBABILITIES, MODEL_VERSION, TRUE_LABEL)

SUMMARY_FILE = "summary.json"
EVALUATION_FILE = "evaluation.json"
PREDICTIONS_PREFIX = "predictions"


def prediction_arrow_schema(multi_label: bool, keep_fields: tuple[str, ...]) -> pa.Schema:
    """Columns of predictions-*.parquet; `true_label` is null for unlabelled documents; kept input
    fields follow as strings."""
    label_list = pa.list_(pa.string())
    fields = [
        (ID, pa.string()),
        (SOURCE, pa.string()),
        (LABEL, pa.string()),
        (SCORE, pa.float32()),
        (PROBABILITIES, pa.map_(pa.string(), pa.float32())),
        (MODEL_VERSION, pa.string()),
        (TRUE_LABEL, label_list if multi_label else pa.string()),
    ]
    if multi_label:
        fields.insert(3, (LABELS, label_list))
    fields += [(name, pa.string()) for name in keep_fields]
    return pa.schema(fields)
