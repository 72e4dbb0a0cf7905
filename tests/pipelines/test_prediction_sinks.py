"""Each output format holds a prediction row whole: lists stay lists, exact label names survive."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pytest

from pipelines.prediction_sinks import csv_line, json_line, parquet_row
from schemas import predictions

MULTI_LABEL_ROW = {
    predictions.ID: "d1", predictions.SOURCE: "in.jsonl:3", predictions.LABEL: "arts, culture",
    predictions.LABELS: ["arts, culture", 'say "hi"'], predictions.SCORE: 0.9,
    predictions.PROBABILITIES: {"arts, culture": 0.9, 'say "hi"': 0.6, "sports": 0.1},
    predictions.MODEL_VERSION: "7", predictions.TRUE_LABEL: ["arts, culture"], "lang": None,
}
COLUMNS = predictions.prediction_arrow_schema(True, ("lang",)).names


def test_every_format_declares_source_and_multi_label_lists():
    single, multi = predictions.prediction_arrow_schema(False, ()), predictions.prediction_arrow_schema(True, ())
    assert single.field(predictions.SOURCE).type == multi.field(predictions.SOURCE).type == pa.string()
    assert single.field(predictions.TRUE_LABEL).type == pa.string()
    assert multi.field(predictions.TRUE_LABEL).type == multi.field(predictions.LABELS).type == pa.list_(pa.string())
    assert predictions.LABELS not in single.names


def test_a_csv_cell_holds_a_list_or_map_as_json_and_a_missing_value_as_empty():
    (cells,) = csv.reader(io.StringIO(csv_line(MULTI_LABEL_ROW, COLUMNS)))
    row = dict(zip(COLUMNS, cells))
    assert json.loads(row[predictions.LABELS]) == ["arts, culture", 'say "hi"']
    assert json.loads(row[predictions.TRUE_LABEL]) == ["arts, culture"]
    assert json.loads(row[predictions.PROBABILITIES]) == MULTI_LABEL_ROW[predictions.PROBABILITIES]
    assert (row[predictions.LABEL], row[predictions.SCORE], row["lang"]) == ("arts, culture", "0.9", "")


def test_a_json_line_keeps_lists_and_the_schemas_column_order():
    values = json.loads(json_line(MULTI_LABEL_ROW, COLUMNS))
    assert list(values) == COLUMNS
    assert values[predictions.LABELS] == ["arts, culture", 'say "hi"']


@pytest.mark.parametrize("multi_label", [False, True])
def test_a_parquet_row_fits_the_declared_schema(multi_label):
    schema = predictions.prediction_arrow_schema(multi_label, ("lang",))
    row = dict(MULTI_LABEL_ROW)
    if not multi_label:
        row[predictions.TRUE_LABEL] = "arts, culture"
    (stored,) = pa.Table.from_pylist([parquet_row(row, schema.names)], schema=schema).to_pylist()
    assert dict(stored[predictions.PROBABILITIES]) == pytest.approx(row[predictions.PROBABILITIES])
    assert stored[predictions.TRUE_LABEL] == row[predictions.TRUE_LABEL]
    assert stored.get(predictions.LABELS) == (row[predictions.LABELS] if multi_label else None)
