"""Length sorting before RunInference: every document once, and batches of similar lengths."""

from __future__ import annotations

import functools
import json
import random

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipelines import scoring
from pipelines.documents import Document
from pipelines.length_sort import SortByLength, _SortWindowsDoFn, length_sorted, text_length
from pipelines.model_handler import SavedModelTextHandler, read_export_metadata


def texts_of_random_lengths(count: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(["team", "goal", "bank", "lab", "a"], k=rng.randint(1, 30))) for _ in range(count)]


def run_dofn_over_one_bundle(dofn: beam.DoFn, elements: list) -> list:
    dofn.start_bundle()
    emitted = [out for element in elements for out in dofn.process(element)]
    return emitted + [windowed.value for windowed in dofn.finish_bundle()]


def test_each_window_comes_out_sorted_by_length_with_every_element_once():
    texts = texts_of_random_lengths(23)
    emitted = run_dofn_over_one_bundle(_SortWindowsDoFn(window_size=8, length_fn=text_length), texts)
    assert sorted(emitted) == sorted(texts)
    for start in range(0, len(texts), 8):  # windows of 8, 8 and the last 7
        window = emitted[start:start + 8]
        assert sorted(window) == sorted(texts[start:start + 8])
        assert [len(t) for t in window] == sorted(len(t) for t in window)
    assert list(length_sorted(texts, window_size=8)) == emitted  # the helper benchmarks use gives the same order


@pytest.mark.slow
def test_sort_by_length_in_a_pipeline_loses_and_duplicates_nothing():
    texts = texts_of_random_lengths(50) + ["same"] * 3  # duplicates stay three
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        assert_that(pipeline | beam.Create(texts) | SortByLength(window_size=8), equal_to(texts))


def test_sort_by_length_refuses_a_window_size_below_one():
    with pytest.raises(ValueError, match="window_size=0"):
        SortByLength(window_size=0)


class _RecordingHandler(SavedModelTextHandler):
    """Appends the text lengths of every batch it is given to a file, then scores the batch."""

    def __init__(self, *args, record_path: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._record_path = record_path

    def run_inference(self, batch, model, inference_args=None):
        with open(self._record_path, "a") as f:
            f.write(json.dumps([len(text) for text in batch]) + "\n")
        return super().run_inference(batch, model, inference_args)


@pytest.mark.slow
def test_batches_reaching_the_model_hold_consecutive_lengths(tmp_path, monkeypatch, tiny_export):
    record_path = tmp_path / "batches.jsonl"
    monkeypatch.setattr(scoring, "SavedModelTextHandler", functools.partial(_RecordingHandler,
                                                                            record_path=str(record_path)))
    texts = texts_of_random_lengths(62)
    documents = [Document(id=f"d{i}", text=text, labels=(), source=f"f:{i}") for i, text in enumerate(texts)]
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        scored = (pipeline | beam.Create(documents)
                  | scoring.ScoreDocuments(tiny_export, read_export_metadata(tiny_export), batch_size=4,
                                           id_from_source=False, padding="longest",
                                           sort_window_batches=32))  # one window holds every document
        assert_that(scored["predictions"] | beam.Map(lambda row: row["id"]), equal_to([d.id for d in documents]))

    batches = sorted((json.loads(line) for line in record_path.read_text().splitlines()), key=min)
    assert sorted(length for batch in batches for length in batch) == sorted(len(t) for t in texts)
    assert [len(batch) for batch in batches].count(4) == len(batches) - 1  # 62 = 15 batches of 4 and one of 2
    for batch, following in zip(batches, batches[1:]):  # the batches partition the sorted lengths
        assert max(batch) <= min(following)
