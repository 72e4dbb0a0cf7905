"""Progress lines and counters: a fake clock and a fake terminal for the meter, one tiny scoring run for
the Beam counters."""

from __future__ import annotations

import io
import logging
import pickle

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipelines import progress
from pipelines.documents import Document
from pipelines.model_handler import read_export_metadata
from pipelines.progress import (LogLines, ProgressMeter, StageProgress, TerminalLine, format_bytes, output_for,
                                progress_line)
from pipelines.scoring import ScoreDocuments

MB = 1_000_000


class FakeClock:
    """Time that moves only when told; counts how often it is read."""

    def __init__(self, step: float = 0.0):
        self.now, self.step, self.reads = 0.0, step, 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class RecordedOutput:
    """A ProgressOutput that keeps what it was given."""

    def __init__(self, interval_seconds: float):
        self.interval_seconds = interval_seconds
        self.shown: list[str] = []
        self.finished: list[str] = []

    def show(self, line: str) -> None:
        self.shown.append(line)

    def finish(self, line: str) -> None:
        self.finished.append(line)


# --- The line. ---

def test_the_line_says_documents_read_the_share_of_the_input_the_rate_and_the_time_left():
    line = progress_line("preprocess", elapsed=60, documents_read=120_000, bytes_read=90 * MB, total_bytes=200 * MB)
    # 45% read in 60 s: 55% left at that pace is 60 × 55/45 = 73 s.
    assert line == "preprocess: 120,000 documents read (45% of 200 MB), 2,000 docs/s, about 1 min 13 s left"


def test_a_scoring_line_counts_documents_scored_at_their_rate_and_times_the_rest_by_the_fraction_read():
    line = progress_line("score", elapsed=10, documents_read=1_200, bytes_read=25 * MB, total_bytes=100 * MB,
                         documents_scored=1_000)
    assert line == "score: 1,000 documents scored, 1,200 read (25% of 100 MB), 100 docs/s, about 30 s left"


def test_a_stage_that_reads_its_input_three_times_counts_every_read_towards_the_total():
    line = progress_line("preprocess", elapsed=60, documents_read=150_000, bytes_read=300 * MB, total_bytes=200 * MB,
                         reads=3)
    assert line == "preprocess: 150,000 documents read (50% of 3 × 200 MB), 2,500 docs/s, about 1 min 00 s left"
    meter = StageProgress("preprocess", total_bytes=200 * MB, reads=3).meter()
    assert meter.update(documents=1, bytes=300 * MB) is None and "(50% of 3 × 200 MB)" in meter.line()


def test_without_a_total_the_line_has_no_share_and_no_time_left():
    assert progress_line("score", elapsed=4, documents_read=0, bytes_read=0, total_bytes=None,
                         documents_scored=2) == "score: 2 documents scored, 0.5 docs/s"
    assert progress_line("preprocess", elapsed=4, documents_read=1, bytes_read=10, total_bytes=0) == (
        "preprocess: 1 document read, 0.2 docs/s")


def test_once_every_byte_is_read_the_share_stops_at_100_percent_without_a_time_left():
    # More bytes than listed (e.g. counted after decompression) must not read as over 100%.
    line = progress_line("preprocess", elapsed=10, documents_read=500, bytes_read=3 * MB, total_bytes=2 * MB)
    assert line == "preprocess: 500 documents read (100% of 2 MB), 50 docs/s"


def test_the_share_is_rounded_down_so_100_percent_means_all_read():
    line = progress_line("preprocess", elapsed=10, documents_read=500, bytes_read=999, total_bytes=1000)
    assert "(99% of 1 kB)" in line and "left" in line


@pytest.mark.parametrize("count, text", [(0, "0 B"), (999, "999 B"), (1_000, "1 kB"), (999_499, "999 kB"),
                                         (999_600, "1 MB"), (12_345_678, "12.3 MB"), (230 * MB, "230 MB"),
                                         (1_234_567_890, "1.23 GB")])
def test_sizes_read_as_three_significant_digits_in_decimal_units(count, text):
    assert format_bytes(count) == text


# --- When a line is due, and where it goes. ---

def test_a_line_is_due_once_per_interval_of_the_output():
    clock = FakeClock()
    meter = ProgressMeter("preprocess", 100 * MB, output=RecordedOutput(interval_seconds=2.0), clock=clock)
    assert meter.update(documents=10, bytes=10 * MB) is None
    clock.now = 1.9
    assert meter.update(documents=10, bytes=10 * MB) is None
    clock.now = 2.0
    assert meter.update(documents=10, bytes=10 * MB) == (
        "preprocess: 30 documents read (30% of 100 MB), 15 docs/s, about 5 s left")  # 2 s × 70/30
    clock.now = 3.9
    assert meter.update(documents=1) is None
    clock.now = 4.0
    assert meter.update().startswith("preprocess: 31 documents read")


def test_the_time_before_the_first_document_such_as_loading_a_model_is_not_counted():
    clock = FakeClock()
    meter = ProgressMeter("preprocess", 100 * MB, output=RecordedOutput(interval_seconds=2.0), clock=clock)
    clock.now = 100.0  # set-up took 100 s
    assert meter.update(documents=1, bytes=1 * MB) is None
    clock.now = 102.0
    assert meter.update(documents=9, bytes=9 * MB) == (
        "preprocess: 10 documents read (10% of 100 MB), 5.0 docs/s, about 18 s left")


def test_no_time_left_is_guessed_before_1_percent_is_read():
    line = progress_line("preprocess", elapsed=3, documents_read=3, bytes_read=9, total_bytes=1_000)
    assert line == "preprocess: 3 documents read (0% of 1 kB), 1.0 docs/s"


def test_a_terminal_gets_a_line_every_2_s_and_a_log_every_30_s():
    assert output_for(FakeTerminal()).interval_seconds == 2.0
    assert isinstance(output_for(FakeTerminal()), TerminalLine)
    assert isinstance(output_for(io.StringIO()), LogLines)  # not a terminal: a log file, a remote worker
    closed = io.StringIO()
    closed.close()  # isatty() raises on a closed stream
    assert isinstance(output_for(closed), LogLines)
    assert LogLines.interval_seconds == 30.0


def test_a_terminal_line_is_rewritten_in_place_and_ended_with_the_last_counts():
    terminal = FakeTerminal()
    line = TerminalLine(terminal)
    line.show("score: 1,000 documents scored")
    line.show("score: 9 s")  # shorter: padded over the rest of the longer line
    line.finish("score: 2,000 documents scored")
    assert terminal.getvalue() == ("\rscore: 1,000 documents scored" + "\rscore: 9 s".ljust(30)
                                   + "\rscore: 2,000 documents scored\n")


def test_a_terminal_that_was_never_shown_a_line_gets_nothing_at_the_end():
    terminal = FakeTerminal()
    TerminalLine(terminal).finish("preprocess: 3 documents read")
    assert terminal.getvalue() == ""


def test_log_lines_are_info_records(caplog):
    with caplog.at_level(logging.INFO):
        LogLines().show("preprocess: 3 documents read")
        LogLines().finish("preprocess: 4 documents read")
    assert [r.getMessage() for r in caplog.records] == ["preprocess: 3 documents read"]


def test_a_meter_on_a_terminal_shows_its_lines_as_records_arrive_and_ends_the_line_at_finish():
    terminal, clock = FakeTerminal(), FakeClock(step=0.5)  # each clock read half a second later
    meter = ProgressMeter("preprocess", 1_000, output=output_for(terminal), clock=clock)
    for _ in range(10):
        meter.add(documents=1, bytes=50)
    meter.finish()
    assert terminal.getvalue().count("\r") >= 3
    assert terminal.getvalue().endswith("\n")
    assert "preprocess: 10 documents read (50% of 1 kB)" in terminal.getvalue().rsplit("\r", 1)[1]


# --- Cheap per record. ---

def test_fast_records_read_the_clock_only_every_few_thousand():
    clock = FakeClock()  # time stands still: records come as fast as they can
    meter = ProgressMeter("preprocess", 10 * MB, output=RecordedOutput(2.0), clock=clock)
    for _ in range(100_000):
        meter.add(documents=1, bytes=100)
    assert clock.reads < 40
    assert (meter.documents_read, meter.bytes_read) == (100_000, 10 * MB)


def test_slow_records_read_the_clock_at_each_record_so_lines_stay_on_time():
    clock, output = FakeClock(step=1.0), RecordedOutput(interval_seconds=2.0)
    meter = ProgressMeter("score", None, output=output, clock=clock)
    for _ in range(10):
        meter.add_scored()
    assert clock.reads == 10  # at every record
    assert len(output.shown) == 4  # 2, 4, 6 and 8 s after the first record
    assert output.shown[-1] == "score: 9 documents scored, 1.1 docs/s"


def test_a_log_record_printed_while_a_terminal_line_is_shown_starts_on_its_own_line():
    terminal = FakeTerminal()
    handler = logging.StreamHandler(terminal)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        line = TerminalLine(terminal)
        line.show("score: 10 documents scored")
        root.warning("a log record")
        line.show("score: 20 documents scored")
        line.finish("score: 30 documents scored")
        root.warning("after the end")
    finally:
        root.removeHandler(handler)
    assert terminal.getvalue() == ("\rscore: 10 documents scored\na log record\n\rscore: 20 documents scored"
                                   "\rscore: 30 documents scored\nafter the end\n")


# --- One meter per run and process. ---

def test_the_dofns_of_one_run_share_its_meter_and_another_run_gets_a_fresh_one():
    run = StageProgress("score", total_bytes=100)
    run.meter().add(documents=2, bytes=10)
    copied = pickle.loads(pickle.dumps(run))  # as each DoFn carries it to the worker
    assert copied.meter() is run.meter()
    assert copied.meter().documents_read == 2
    assert StageProgress("score", total_bytes=100).meter().documents_read == 0


def test_a_long_lived_process_keeps_the_meters_of_its_latest_runs_only():
    runs = [StageProgress("score", total_bytes=None) for _ in range(progress._MAX_RUNS + 3)]
    for run in runs:
        run.meter()
    assert runs[0].run_id not in progress._meters
    assert all(run.run_id in progress._meters for run in runs[-progress._MAX_RUNS:])


# --- The Beam counters, in a real run. ---

def _counted_as_read(document: Document, stage: StageProgress) -> Document:
    """What the reader does for each record it reads."""
    stage.meter().add(documents=1, bytes=len(document.text.encode()))
    return document


@pytest.mark.slow
def test_a_scoring_run_counts_documents_read_bytes_read_and_documents_scored_in_beam_counters(tiny_export):
    documents = [Document(id=f"d{i}", text="team goal " * (i + 1), labels=(), source=f"f:{i}") for i in range(12)]
    total_bytes = sum(len(d.text.encode()) for d in documents)
    stage = StageProgress("score", total_bytes)
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        _ = (pipeline | beam.Create(documents) | beam.Map(_counted_as_read, stage)
             | ScoreDocuments(tiny_export, read_export_metadata(tiny_export), batch_size=4, id_from_source=False,
                              progress=stage))
    counters = pipeline.result.metrics().query(MetricsFilter().with_namespace(progress.METRICS_NAMESPACE))
    totals = {}
    for counter in counters["counters"]:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + counter.committed
    assert totals == {progress.DOCUMENTS_READ: 12, progress.BYTES_READ: total_bytes, progress.DOCUMENTS_SCORED: 12}
    # In-process runner: the reader and the scorer counted into this process's one meter of the run.
    meter = stage.meter()
    assert (meter.documents_read, meter.bytes_read, meter.documents_scored) == (12, total_bytes, 12)
