"""Prediction rows → sharded predictions-*.jsonl / .parquet / .csv files.

Each format holds the same columns, in the order of the declared Arrow schema
(schemas/predictions.py). Lists and maps keep their structure: JSON arrays and objects in JSON
Lines, list<string> and map<string, float> in Parquet. A CSV cell holds plain text, so there a
list or map is written as JSON text in the cell (`["arts, culture","sports"]`,
`{"sports":0.9,...}`, quoted by the CSV writer like any cell holding a comma or quote); a
missing value is an empty cell.
"""

from __future__ import annotations

import csv
import io
import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from schemas import predictions


def json_line(row: dict, columns: list[str]) -> str:
    return json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False)


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def csv_line(row: dict, columns: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def parquet_row(row: dict, columns: list[str]) -> dict:
    row = {c: row.get(c) for c in columns}
    row[predictions.PROBABILITIES] = list(row[predictions.PROBABILITIES].items())  # a map column takes pairs
    return row


class WritePredictions(beam.PTransform):
    """Prediction rows → sharded predictions-*.jsonl / .parquet / .csv in `output_dir`."""

    def __init__(self, output_dir: str, output_format: str, multi_label: bool, keep_fields: tuple[str, ...],
                 num_shards: int):
        super().__init__()
        self._prefix = FileSystems.join(output_dir, predictions.PREDICTIONS_PREFIX)
        self._format = output_format
        self._schema = predictions.prediction_arrow_schema(multi_label, keep_fields)
        self._num_shards = num_shards

    def expand(self, rows):
        columns = self._schema.names
        if self._format == "jsonl":
            return (rows
                    | "ToJson" >> beam.Map(json_line, columns=columns)
                    | "WriteJsonLines" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl",
                                                              num_shards=self._num_shards))
        if self._format == "csv":
            return (rows
                    | "ToCsv" >> beam.Map(csv_line, columns=columns)
                    | "WriteCsv" >> beam.io.WriteToText(self._prefix, file_name_suffix=".csv",
                                                        header=csv_line(dict(zip(columns, columns)), columns),
                                                        num_shards=self._num_shards))
        return (rows
                | "ToParquetRow" >> beam.Map(parquet_row, columns=columns)
                | "WriteParquet" >> beam.io.WriteToParquet(self._prefix, self._schema, file_name_suffix=".parquet",
                                                           num_shards=self._num_shards))
