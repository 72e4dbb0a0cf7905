"""The scoring stage: RunInference over the raw-text export, every document accounted for."""

from __future__ import annotations

import csv
import glob
import json
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipelines import score
from pipelines.documents import Document
from pipelines.model_handler import SavedModelTextHandler, read_export_metadata, resolve_export, signature_for
from schemas import features, predictions, rejections
from schemas.errors import UserError
from tests.conftest import make_documents, run_cli

pytestmark = pytest.mark.slow


def scoring_corpus(path) -> tuple[list[dict], int]:
    """Labelled documents (duplicate texts under distinct ids) plus broken lines; returns (docs, broken count)."""
    documents = make_documents(60)
    documents += [{"id": f"copy-{i}", "text": documents[0]["text"], "label": documents[0]["label"]} for i in range(3)]
    lines = [json.dumps(d) for d in documents]
    broken = ['{"id": "b1", "text": ', '{"id": "b2", "text": "  "}', '{"id": "b3"}']
    lines[5:5] = broken
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "b4", "text": "\xff\xfe bad"}\n')
    return documents, len(broken) + 1


def read_predictions(output_dir) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(str(output_dir), "predictions-*"))):
        if path.endswith(".jsonl"):
            rows += [json.loads(line) for line in open(path, encoding="utf-8")]
        elif path.endswith(".parquet"):
            for row in pq.read_table(path).to_pylist():
                row[predictions.PROBABILITIES] = dict(row[predictions.PROBABILITIES])
                rows.append(row)
        else:
            for row in csv.DictReader(open(path, encoding="utf-8", newline="")):
                row[predictions.PROBABILITIES] = json.loads(row[predictions.PROBABILITIES])
                row[predictions.SCORE] = float(row[predictions.SCORE])
                rows.append(row)
    return rows


def read_rejected(output_dir) -> list[dict]:
    return [json.loads(line) for path in glob.glob(os.path.join(str(output_dir), features.REJECTED_DIR, "*.jsonl"))
            for line in open(path, encoding="utf-8")]


def direct_labels(export_dir: str, texts: list[str]) -> list[str]:
    outputs = tf.saved_model.load(export_dir).signatures["serving_default"](text=tf.constant(texts))
    return [label.decode() for label in outputs["label"].numpy()]


def test_every_document_is_scored_or_rejected_once_with_the_exports_labels(tmp_path, tiny_export):
    documents, broken = scoring_corpus(tmp_path / "docs.jsonl")

    summary = score.run(["--model", os.path.dirname(os.path.dirname(tiny_export)), "--input",
                         str(tmp_path / "docs.jsonl"), "--id-field", "id", "--output-dir", str(tmp_path / "out"),
                         "--batch-size", "8"])

    rows, rejected = read_predictions(tmp_path / "out"), read_rejected(tmp_path / "out")
    assert summary["read"] == summary["scored"] + summary["rejected"] == len(documents) + broken
    assert summary["scored"] == len(rows) == len(documents)
    assert summary["rejected_by_reason"] == {rejections.UNPARSABLE_RECORD: 1, rejections.EMPTY_TEXT: 1,
                                             rejections.MISSING_TEXT: 1, rejections.INVALID_UTF8: 1}
    assert sorted(r[predictions.ID] for r in rows) == sorted(d["id"] for d in documents)  # each id once
    assert all(r["source"].endswith("docs.jsonl:" + r["source"].rsplit(":", 1)[1]) for r in rejected)
    by_id = {r[predictions.ID]: r for r in rows}
    texts = [d["text"] for d in documents]
    assert [by_id[d["id"]][predictions.LABEL] for d in documents] == direct_labels(tiny_export, texts)
    assert {by_id[f"copy-{i}"][predictions.LABEL] for i in range(3)} == {by_id[documents[0]["id"]]["label"]}
    assert all(r[predictions.MODEL_VERSION] == "42" for r in rows)
    assert all(abs(sum(r[predictions.PROBABILITIES].values()) - 1) < 1e-4 for r in rows)
    assert all(r[predictions.TRUE_LABEL] == d["label"] for d in documents for r in [by_id[d["id"]]])
    assert summary["model_version"] == "42" and summary["docs_per_second"] > 0
    # The model's share of the run, from RunInference's metrics: loaded once, called for every batch.
    assert 0 < summary["model_load_seconds"] < summary["wall_seconds"]
    assert 0 < summary["model_call_seconds"] < summary["wall_seconds"]
    assert summary["model_call_docs_per_second"] > summary["docs_per_second"]
    evaluation = json.loads((tmp_path / "out" / predictions.EVALUATION_FILE).read_text())
    agree = sum(by_id[d["id"]][predictions.LABEL] == d["label"] for d in documents)
    assert evaluation["accuracy"] == pytest.approx(agree / len(documents))


def test_jsonl_parquet_and_csv_hold_the_same_predictions(tmp_path, tiny_export):
    make_input = tmp_path / "docs.jsonl"
    scoring_corpus(make_input)
    outputs = {}
    for output_format in ("jsonl", "parquet", "csv"):
        score.run(["--model", tiny_export, "--input", str(make_input), "--id-field", "id", "--output-format",
                   output_format, "--output-dir", str(tmp_path / output_format), "--num-shards", "2"])
        assert len(glob.glob(str(tmp_path / output_format / f"predictions-*.{output_format}"))) == 2
        outputs[output_format] = {r[predictions.ID]: r for r in read_predictions(tmp_path / output_format)}
    for output_format in ("parquet", "csv"):  # Parquet stores float32, JSON keeps 6 decimals
        assert outputs[output_format].keys() == outputs["jsonl"].keys()
        for doc_id, row in outputs[output_format].items():
            expected = outputs["jsonl"][doc_id]
            assert row[predictions.LABEL] == expected[predictions.LABEL]
            assert row[predictions.SCORE] == pytest.approx(expected[predictions.SCORE], abs=1e-5)
            assert row[predictions.PROBABILITIES] == pytest.approx(expected[predictions.PROBABILITIES], abs=1e-5)
    schema = pq.read_schema(glob.glob(str(tmp_path / "parquet" / "predictions-*.parquet"))[0])
    assert schema.remove_metadata() == predictions.prediction_arrow_schema(False, ()).remove_metadata()


def test_without_an_id_field_each_document_is_identified_by_its_source(tmp_path, tiny_export):
    (tmp_path / "docs.jsonl").write_text('{"text": "same words"}\n{"text": "same words"}\n{"text": "team goal"}\n')
    score.run(["--model", tiny_export, "--input", str(tmp_path / "docs.jsonl"), "--output-dir", str(tmp_path / "out"),
               "--keep-fields", "text"])
    rows = read_predictions(tmp_path / "out")
    assert sorted(r[predictions.ID] for r in rows) == [f"{tmp_path / 'docs.jsonl'}:{i}" for i in (1, 2, 3)]
    assert sorted(r["text"] for r in rows) == ["same words", "same words", "team goal"]
    assert all(r[predictions.TRUE_LABEL] is None for r in rows)
    assert not (tmp_path / "out" / predictions.EVALUATION_FILE).exists()


class _FailingOnBoom(SavedModelTextHandler):
    def run_inference(self, batch, model, inference_args=None):
        if any("BOOM" in text for text in batch):
            raise ValueError("model exploded")
        return super().run_inference(batch, model, inference_args)


def test_a_failing_model_call_rejects_the_documents_of_that_batch(monkeypatch, tiny_export):
    monkeypatch.setattr(score, "SavedModelTextHandler", _FailingOnBoom)
    # Lengths grow with i, so sorting by length keeps this order and d2, d3 share the second batch.
    documents = [Document(id=f"d{i}", text="team goal " * (i + 1) + ("BOOM" if i == 3 else ""), labels=(),
                          source=f"f:{i}") for i in range(4)]
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        scored = (pipeline | beam.Create(documents)
                  | score.ScoreDocuments(tiny_export, read_export_metadata(tiny_export), batch_size=2,
                                         id_from_source=False, label_separator=","))
        assert_that(scored["predictions"] | "Ids" >> beam.Map(lambda r: r[predictions.ID]), equal_to(["d0", "d1"]),
                    label="ScoredIds")
        assert_that(scored["failed"] | "Failed" >> beam.Map(lambda r: (r.reason, r.source, r.record)),
                    equal_to([(rejections.INFERENCE_FAILED, "f:2", "d2"), (rejections.INFERENCE_FAILED, "f:3", "d3")]),
                    label="FailedDocuments")


def test_longest_and_max_length_padding_give_every_document_the_same_prediction(tmp_path, tiny_export):
    words = "team goal bank profit lab data the match market".split()
    documents = [{"id": f"d{i}", "text": " ".join(words[j % len(words)] for j in range(1 + i * 7 % 23))}
                 for i in range(50)]  # 1 to 23 words, shuffled lengths, some over max_seq_length (16)
    documents.append({"id": "oov", "text": "zzz qqq"})
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in documents))
    outputs = {}
    for padding in ("longest", "max_length"):
        score.run(["--model", tiny_export, "--input", str(tmp_path / "docs.jsonl"), "--id-field", "id",
                   "--batch-size", "4", "--padding", padding, "--output-dir", str(tmp_path / padding)])
        outputs[padding] = {r[predictions.ID]: r for r in read_predictions(tmp_path / padding)}
    assert sorted(outputs["longest"]) == sorted(outputs["max_length"]) == sorted(d["id"] for d in documents)
    for doc_id, row in outputs["longest"].items():
        expected = outputs["max_length"][doc_id]
        assert row[predictions.LABEL] == expected[predictions.LABEL]
        assert row[predictions.PROBABILITIES] == pytest.approx(expected[predictions.PROBABILITIES], abs=1e-5)


def test_an_export_without_recorded_signatures_scores_only_with_its_default_signature():
    assert signature_for({}, "longest") == "serving_default"
    with pytest.raises(UserError, match="no signature for padding 'max_length'.*--padding longest"):
        signature_for({}, "max_length")


def test_the_handler_returns_one_result_per_text_in_order(tiny_export):
    handler = SavedModelTextHandler(tiny_export, batch_size=4)
    model = handler.load_model()
    results = list(handler.run_inference(["team goal", "bank profit", "lab data"], model))
    assert [r.example for r in results] == ["team goal", "bank profit", "lab data"]
    assert [r.inference["label"].decode() for r in results] == direct_labels(tiny_export,
                                                                             ["team goal", "bank profit", "lab data"])
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 4}


def test_model_dir_resolves_to_its_newest_export(tmp_path, tiny_export):
    model_dir = os.path.dirname(os.path.dirname(tiny_export))
    assert resolve_export(model_dir) == tiny_export
    assert resolve_export(tiny_export) == tiny_export


def test_multi_process_scoring_equals_in_process_scoring(tmp_path, tiny_export):
    scoring_corpus(tmp_path / "docs.jsonl")
    args = ["--model", tiny_export, "--input", str(tmp_path / "docs.jsonl"), "--id-field", "id"]
    single = run_cli("pipelines.score", *args, "--output-dir", str(tmp_path / "single"))
    multi = run_cli("pipelines.score", *args, "--output-dir", str(tmp_path / "multi"),
                    "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert single.returncode == 0, single.stderr[-3000:]
    assert multi.returncode == 0, multi.stderr[-3000:]
    key = lambda r: (r[predictions.ID], r[predictions.LABEL], round(r[predictions.SCORE], 5))  # noqa: E731
    assert sorted(map(key, read_predictions(tmp_path / "single"))) == sorted(map(key, read_predictions(tmp_path / "multi")))


@pytest.mark.parametrize("args, message", [
    (["--model", "{missing}"], "No exported model in"),
    (["--model", "{export}", "--output-format", "xml"], "invalid choice"),
    (["--model", "{export}", "--keep-fields", "label"], "cannot include prediction columns"),
    (["--model", "{export}", "--padding", "none"], "invalid choice"),
    ([], "No model given"),
])
def test_scoring_user_mistakes_are_one_line_errors(tmp_path, tiny_export, args, message):
    (tmp_path / "docs.jsonl").write_text('{"text": "a"}\n')
    argv = [a.format(missing=tmp_path / "nothing", export=tiny_export) for a in args]
    result = run_cli("pipelines.score", *argv, "--input", str(tmp_path / "docs.jsonl"),
                     "--output-dir", str(tmp_path / "out"))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
