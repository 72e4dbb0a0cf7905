"""The scoring stage: RunInference over the raw-text export, every document accounted for.

Fast tests check what the stage decides before it reads a document (flags, the export, the
output directory) with stand-in exports. Slow tests run the stage, one run per scenario,
shared by the tests that read it.
"""

from __future__ import annotations

import csv
import glob
import json
import os

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipelines import score, scoring
from pipelines.documents import Document
from pipelines.model_handler import SavedModelTextHandler, read_export_metadata
from schemas import export_contract, features, output_dirs, predictions, rejections
from schemas.errors import UserError
from tests.conftest import make_documents
from tests.pipelines.conftest import ARTS, multi_label_documents

slow = pytest.mark.slow


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


def direct_outputs(export_dir: str, texts: list[str]) -> dict:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    signature = tf.saved_model.load(export_dir).signatures[export_contract.DYNAMIC_SIGNATURE]
    return {name: tensor.numpy() for name, tensor in signature(text=tf.constant(texts)).items()}


def write_jsonl(path, documents: list[dict]) -> str:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents))
    return str(path)


# --- Before any document is read: flags, the export, the output directory (stand-in exports). ---

def finished_model_dir(fake_export, model_dir) -> str:
    """A trainer's finished output: an export, the trainer's stage marker and _SUCCESS."""
    fake_export(model_dir=model_dir)
    (model_dir / output_dirs.STAGE_MARKER).write_text(output_dirs.stage_marker(output_dirs.TRAIN))
    (model_dir / features.SUCCESS_MARKER).write_text("")
    return str(model_dir)


def test_scoring_into_the_model_it_reads_is_refused_even_with_overwrite(tmp_path, fake_export):
    model_dir = finished_model_dir(fake_export, tmp_path / "model")
    before = sorted(os.listdir(model_dir))
    (tmp_path / "docs.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(UserError, match="overlaps the input") as error:
        score.run(["--model", model_dir, "--input", str(tmp_path / "docs.jsonl"), "--output-dir", model_dir,
                   "--overwrite"])
    assert "--overwrite" not in str(error.value)
    assert sorted(os.listdir(model_dir)) == before


def test_scoring_over_another_finished_model_is_refused_even_with_overwrite(tmp_path, fake_export):
    other_model = finished_model_dir(fake_export, tmp_path / "other_model")
    before = sorted(os.listdir(other_model))
    (tmp_path / "docs.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(UserError, match="holds the output of the train stage"):
        score.run(["--model", fake_export(model_dir=tmp_path / "model"), "--input", str(tmp_path / "docs.jsonl"),
                   "--output-dir", other_model, "--overwrite"])
    assert sorted(os.listdir(other_model)) == before


@pytest.mark.parametrize("args, message", [
    (["--model", "{missing}"], "No exported model in"),
    (["--model", "{export}", "--output-format", "xml"], "invalid choice"),
    (["--model", "{export}", "--keep-fields", "label"], "cannot include prediction columns"),
    (["--model", "{export}", "--keep-fields", "source"], "cannot include prediction columns"),
    (["--model", "{export}", "--padding", "none"], "invalid choice"),
    ([], "No model given"),
])
def test_scoring_user_mistakes_are_user_errors(tmp_path, fake_export, args, message):
    (tmp_path / "docs.jsonl").write_text('{"text": "a"}\n')
    export_dir = fake_export()
    argv = [a.format(missing=tmp_path / "nothing", export=export_dir) for a in args]
    with pytest.raises(UserError, match=message):
        score.run([*argv, "--input", str(tmp_path / "docs.jsonl"), "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


# --- Single-label runs over one corpus: jsonl, parquet, csv; longest and max_length padding. ---

def scoring_corpus(path) -> tuple[list[dict], int]:
    """Labelled documents (duplicate texts under distinct ids), unlabelled ones of 1 to 23 words (some
    over max_seq_length 16, one of unknown words), and broken lines; returns (docs, broken count)."""
    documents = make_documents(60)
    documents += [{"id": f"copy-{i}", "text": documents[0]["text"], "label": documents[0]["label"]} for i in range(3)]
    words = "team goal bank profit lab data the match market".split()
    documents += [{"id": f"len-{i}", "text": " ".join(words[j % len(words)] for j in range(1 + i * 7 % 23))}
                  for i in range(30)]
    documents.append({"id": "oov", "text": "zzz qqq"})
    lines = [json.dumps(d) for d in documents]
    broken = ['{"id": "b1", "text": ', '{"id": "b2", "text": "  "}', '{"id": "b3"}']
    lines[5:5] = broken
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "b4", "text": "\xff\xfe bad"}\n')
    return documents, len(broken) + 1


@pytest.fixture(scope="module")
def single_label_run(tmp_path_factory, tiny_export):
    """(documents, broken count, summary, output dir) of the corpus scored with the defaults, from the model dir."""
    directory = tmp_path_factory.mktemp("single_label_run")
    documents, broken = scoring_corpus(directory / "docs.jsonl")
    summary = score.run(["--model", os.path.dirname(os.path.dirname(tiny_export)), "--input",
                         str(directory / "docs.jsonl"), "--id-field", "id", "--output-dir", str(directory / "out"),
                         "--batch-size", "8"])
    return documents, broken, summary, directory


@slow
def test_every_document_is_scored_or_rejected_once_with_the_exports_labels(single_label_run, tiny_export):
    documents, broken, summary, directory = single_label_run
    rows, rejected = read_predictions(directory / "out"), read_rejected(directory / "out")
    assert summary["read"] == summary["scored"] + summary["rejected"] == len(documents) + broken
    assert summary["scored"] == len(rows) == len(documents)
    assert summary["rejected_by_reason"] == {rejections.UNPARSABLE_RECORD: 1, rejections.EMPTY_TEXT: 1,
                                             rejections.MISSING_TEXT: 1, rejections.INVALID_UTF8: 1}
    assert sorted(r[predictions.ID] for r in rows) == sorted(d["id"] for d in documents)  # each id once
    assert summary["duplicate_ids"] == 0
    assert all(r["source"].endswith("docs.jsonl:" + r["source"].rsplit(":", 1)[1]) for r in rejected)
    by_id = {r[predictions.ID]: r for r in rows}
    texts = [d["text"] for d in documents]
    direct = [label.decode() for label in direct_outputs(tiny_export, texts)[export_contract.LABEL_OUTPUT]]
    assert [by_id[d["id"]][predictions.LABEL] for d in documents] == direct
    assert {by_id[f"copy-{i}"][predictions.LABEL] for i in range(3)} == {by_id[documents[0]["id"]]["label"]}
    assert all(r[predictions.MODEL_VERSION] == "42" for r in rows)
    assert all(abs(sum(r[predictions.PROBABILITIES].values()) - 1) < 1e-4 for r in rows)
    assert all(by_id[d["id"]][predictions.TRUE_LABEL] == d.get("label") for d in documents)
    assert summary["model_version"] == "42" and summary["docs_per_second"] > 0
    # The model's share of the run, from RunInference's metrics: loaded once, called for every batch.
    assert 0 < summary["model_load_seconds"] < summary["wall_seconds"]
    assert 0 < summary["model_call_seconds"] < summary["wall_seconds"]
    assert summary["model_call_docs_per_second"] > summary["docs_per_second"]
    evaluation = json.loads((directory / "out" / predictions.EVALUATION_FILE).read_text())
    labelled = [d for d in documents if "label" in d]
    agree = sum(by_id[d["id"]][predictions.LABEL] == d["label"] for d in labelled)
    assert evaluation["accuracy"] == pytest.approx(agree / len(labelled))
    assert summary["evaluation"]["num_examples"] == summary["evaluation"]["labelled"] == len(labelled)


@slow
def test_every_row_names_the_line_its_document_came_from(single_label_run):
    documents, _, _, directory = single_label_run
    lines = (directory / "docs.jsonl").read_bytes().splitlines()
    for row in read_predictions(directory / "out"):
        path, line = row[predictions.SOURCE].rsplit(":", 1)
        assert path == str(directory / "docs.jsonl")
        assert json.loads(lines[int(line) - 1])["id"] == row[predictions.ID]


@slow
@pytest.mark.parametrize("output_format, padding", [("parquet", "longest"), ("csv", "max_length")])
def test_every_format_and_padding_holds_the_same_predictions(single_label_run, tiny_export, output_format, padding):
    _, _, _, directory = single_label_run
    output_dir = directory / f"{output_format}-{padding}"
    score.run(["--model", tiny_export, "--input", str(directory / "docs.jsonl"), "--id-field", "id",
               "--output-format", output_format, "--padding", padding, "--batch-size", "4",
               "--output-dir", str(output_dir), "--num-shards", "2"])
    assert len(glob.glob(str(output_dir / f"predictions-*.{output_format}"))) == 2
    expected = {r[predictions.ID]: r for r in read_predictions(directory / "out")}
    rows = {r[predictions.ID]: r for r in read_predictions(output_dir)}
    assert rows.keys() == expected.keys()
    for doc_id, row in rows.items():  # Parquet stores float32, JSON keeps 6 decimals
        assert row[predictions.LABEL] == expected[doc_id][predictions.LABEL]
        assert row[predictions.SOURCE] == expected[doc_id][predictions.SOURCE]
        assert row[predictions.SCORE] == pytest.approx(expected[doc_id][predictions.SCORE], abs=1e-5)
        assert row[predictions.PROBABILITIES] == pytest.approx(expected[doc_id][predictions.PROBABILITIES], abs=1e-5)
    if output_format == "parquet":
        schema = pq.read_schema(glob.glob(str(output_dir / "predictions-*.parquet"))[0])
        assert schema.remove_metadata() == predictions.prediction_arrow_schema(False, ()).remove_metadata()


@slow
def test_without_an_id_field_each_document_is_identified_by_its_source(tmp_path, tiny_export):
    (tmp_path / "docs.jsonl").write_text('{"text": "same words"}\n{"text": "same words"}\n{"text": "team goal"}\n')
    score.run(["--model", tiny_export, "--input", str(tmp_path / "docs.jsonl"), "--output-dir", str(tmp_path / "out"),
               "--keep-fields", "text"])
    rows = read_predictions(tmp_path / "out")
    assert sorted(r[predictions.ID] for r in rows) == [f"{tmp_path / 'docs.jsonl'}:{i}" for i in (1, 2, 3)]
    assert all(r[predictions.SOURCE] == r[predictions.ID] for r in rows)
    assert sorted(r["text"] for r in rows) == ["same words", "same words", "team goal"]
    assert all(r[predictions.TRUE_LABEL] is None for r in rows)
    assert not (tmp_path / "out" / predictions.EVALUATION_FILE).exists()


@slow
def test_duplicate_ids_and_labels_the_model_never_saw_are_counted(tmp_path, tiny_export):
    documents = make_documents(12)[:12]
    documents += [{"id": "doc-0001", "text": "bank profit again", "label": "business"},  # an id used twice
                  {"id": "w1", "text": "rain and sun today", "label": "weather"},  # labels the model never saw
                  {"id": "w2", "text": "snow in the north", "label": "weather"}]
    summary = score.run(["--model", tiny_export, "--input", write_jsonl(tmp_path / "docs.jsonl", documents),
                         "--id-field", "id", "--output-dir", str(tmp_path / "out")])
    rows = read_predictions(tmp_path / "out")
    assert summary["duplicate_ids"] == 1
    assert len({r[predictions.SOURCE] for r in rows if r[predictions.ID] == "doc-0001"}) == 2
    evaluation = summary["evaluation"]
    assert (evaluation["labelled"], evaluation["unknown_true_labels"], evaluation["num_examples"]) == (15, 2, 13)
    known_right = sum(r[predictions.LABEL] == r[predictions.TRUE_LABEL] for r in rows)
    assert evaluation["accuracy"] == pytest.approx(known_right / 13)
    assert evaluation["accuracy_all_labelled"] == pytest.approx(known_right / 15)


class _FailingOnBoom(SavedModelTextHandler):
    def run_inference(self, batch, model, inference_args=None):
        if any("BOOM" in text for text in batch):
            raise ValueError("model exploded")
        return super().run_inference(batch, model, inference_args)


@slow
def test_a_failing_model_call_rejects_the_documents_of_that_batch(monkeypatch, tiny_export):
    monkeypatch.setattr(scoring, "SavedModelTextHandler", _FailingOnBoom)
    # Lengths grow with i, so sorting by length keeps this order and d2, d3 share the second batch.
    documents = [Document(id=f"d{i}", text="team goal " * (i + 1) + ("BOOM" if i == 3 else ""), labels=(),
                          source=f"f:{i}") for i in range(4)]
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        scored = (pipeline | beam.Create(documents)
                  | scoring.ScoreDocuments(tiny_export, read_export_metadata(tiny_export), batch_size=2,
                                           id_from_source=False))
        assert_that(scored["predictions"] | "Ids" >> beam.Map(lambda r: r[predictions.ID]), equal_to(["d0", "d1"]),
                    label="ScoredIds")
        assert_that(scored["failed"] | "Failed" >> beam.Map(lambda r: (r.reason, r.source, r.record)),
                    equal_to([(rejections.INFERENCE_FAILED, "f:2", "d2"), (rejections.INFERENCE_FAILED, "f:3", "d3")]),
                    label="FailedDocuments")


@slow
def test_the_handler_returns_one_result_per_text_in_order(tiny_export):
    handler = SavedModelTextHandler(tiny_export, batch_size=4)
    model = handler.load_model()
    texts = ["team goal", "bank profit", "lab data"]
    results = list(handler.run_inference(texts, model))
    assert [r.example for r in results] == texts
    assert [r.inference[export_contract.LABEL_OUTPUT] for r in results] == list(
        direct_outputs(tiny_export, texts)[export_contract.LABEL_OUTPUT])
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 4}


# --- Runs that score nothing fail, and leave nothing that looks finished. ---

@slow
def test_a_run_whose_every_record_is_rejected_exits_2_and_keeps_them_unfinished(tmp_path, tiny_export, capsys):
    (tmp_path / "docs.jsonl").write_text('{"id": "b1", "text": "  "}\n{"id": "b2"}\nnot json\n')
    output_dir = tmp_path / "out"
    capsys.readouterr()
    with pytest.raises(SystemExit) as raised:  # the command's entry point, as `python -m pipelines.score` runs it
        score.main(["--model", tiny_export, "--input", str(tmp_path / "docs.jsonl"), "--id-field", "id",
                    "--output-dir", str(output_dir)])
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert raised.value.code == 2 and len(errors) == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "all 3 record(s) were rejected" in errors[0]
    assert not output_dir.exists()
    (failed_dir,) = glob.glob(f"{output_dir}.failed-*")
    assert f"{failed_dir}/{features.REJECTED_DIR}/" in errors[0]
    assert len(read_rejected(failed_dir)) == 3
    assert not os.path.exists(os.path.join(failed_dir, features.SUCCESS_MARKER))
    assert json.loads(open(os.path.join(failed_dir, predictions.SUMMARY_FILE)).read())["scored"] == 0


@slow
def test_an_input_without_documents_is_an_error_not_an_empty_success(tmp_path, tiny_export):
    (tmp_path / "docs.jsonl").write_text("")
    with pytest.raises(UserError, match="the input holds no records"):
        score.run(["--model", tiny_export, "--input", str(tmp_path / "docs.jsonl"), "--output-dir",
                   str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


# --- A multi-label model: list labels in, list labels out, evaluated. ---

@slow
def test_a_multi_label_model_scores_list_labels_and_keeps_each_label_whole(tmp_path, multi_label_export):
    documents = multi_label_documents(40)
    documents.append({"id": "weather", "text": "rain and sun today", "label": ["weather", "sports"]})
    summary = score.run(["--model", multi_label_export, "--input", write_jsonl(tmp_path / "docs.jsonl", documents),
                         "--id-field", "id", "--output-format", "parquet", "--output-dir", str(tmp_path / "out")])
    assert summary["read"] == summary["scored"] == len(documents)  # list labels are not `wrong_type`
    metadata = read_export_metadata(multi_label_export)
    assert ARTS in metadata.label_names
    probabilities = direct_outputs(multi_label_export, [d["text"] for d in documents])[
        export_contract.PROBABILITIES_OUTPUT]
    expected = {d["id"]: [name for name, p in zip(metadata.label_names, row) if p >= np.float32(metadata.threshold)]
                for d, row in zip(documents, probabilities)}
    rows = {r[predictions.ID]: r for r in read_predictions(tmp_path / "out")}
    assert {doc_id: r[predictions.LABELS] for doc_id, r in rows.items()} == expected
    assert {doc_id: r[predictions.TRUE_LABEL] for doc_id, r in rows.items()} == {d["id"]: d["label"]
                                                                                 for d in documents}
    schema = pq.read_schema(glob.glob(str(tmp_path / "out" / "predictions-*.parquet"))[0])
    assert schema.remove_metadata() == predictions.prediction_arrow_schema(True, ()).remove_metadata()

    evaluation = json.loads((tmp_path / "out" / predictions.EVALUATION_FILE).read_text())
    known = [r for doc_id, r in rows.items() if doc_id != "weather"]
    exact = sum(set(r[predictions.LABELS]) == set(r[predictions.TRUE_LABEL]) for r in known)
    true_positives = sum(len(set(r[predictions.LABELS]) & set(r[predictions.TRUE_LABEL])) for r in known)
    predicted = sum(len(r[predictions.LABELS]) for r in known)
    actual = sum(len(r[predictions.TRUE_LABEL]) for r in known)
    assert evaluation["accuracy"] == pytest.approx(exact / len(known))
    assert evaluation["micro_f1"] == pytest.approx(2 * true_positives / (predicted + actual))
    assert evaluation["per_class"][ARTS]["support"] == sum(ARTS in d["label"] for d in documents)
    assert (evaluation["unknown_true_labels"], evaluation["num_examples"]) == (1, len(known))
    assert summary["evaluation"]["micro_f1"] == evaluation["micro_f1"]
