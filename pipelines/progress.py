"""Progress a person can watch: documents read or scored so far, the rate, and the time left.

The reading DoFn of a stage counts each record and its bytes, and the scoring DoFn each
prediction, into one `ProgressMeter` per run and process. The stage knows the input's total size
from the file listing (times the number of times it reads the input, when it reads it more than
once), so the fraction done is bytes read / total bytes and the time left is
elapsed × (1 − fraction) / fraction: the pace so far applied to the bytes still to read. Scoring
lags reading by at most a sort window, so its line uses the same fraction.

On a terminal the line is rewritten in place every few seconds; otherwise (a log file, a remote
worker) it is a log line every 30 s. The same counts go into Beam counters (namespace
`METRICS_NAMESPACE`), which Dataflow shows as the job's custom counters, summed over workers.

Progress is per process. With several worker processes (`--direct_running_mode
multi_processing`, a worker pool, Dataflow) each one reports only the share it read: its
percentage stops short of 100% and its time left reads too long by about the number of
processes. The counters add up across processes.

Counting is cheap per record: two Beam counter increments and a few additions; the clock is read
only every N records, N adapted so that it is read about ten times a second.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol, TextIO

from apache_beam.metrics import Metrics

from schemas.durations import format_duration

METRICS_NAMESPACE = "progress"
DOCUMENTS_READ = "documents_read"
BYTES_READ = "bytes_read"
DOCUMENTS_SCORED = "documents_scored"

TERMINAL_INTERVAL_SECONDS = 2.0
LOG_INTERVAL_SECONDS = 30.0

# Between two clock reads: more records when reads come faster than this, fewer when slower.
_CHECK_SECONDS = 0.1
_MAX_CHECK_EVERY = 4096
# Below this fraction read the pace is mostly start-up noise: no time left yet.
_MIN_FRACTION_TO_ESTIMATE = 0.01
# Meters kept per process: a worker pool or a test process runs several jobs, one meter each.
_MAX_RUNS = 8

_documents_read = Metrics.counter(METRICS_NAMESPACE, DOCUMENTS_READ)
_bytes_read = Metrics.counter(METRICS_NAMESPACE, BYTES_READ)
_documents_scored = Metrics.counter(METRICS_NAMESPACE, DOCUMENTS_SCORED)


def format_bytes(count: int) -> str:
    """Three significant digits in decimal units, as file listings show sizes: "230 MB", "1.23 GB"."""
    value, unit = float(count), "B"
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 999.5 or unit == "PB":  # 999.5 kB would round to "1e+03 kB": say "1 MB"
            break
        value /= 1000
    return f"{value:.0f} B" if unit == "B" else f"{value:.3g} {unit}"


def _documents(count: int) -> str:
    return f"{count:,} document{'' if count == 1 else 's'}"


def progress_line(stage: str, elapsed: float, documents_read: int, bytes_read: int, total_bytes: int | None,
                  documents_scored: int = 0, reads: int = 1) -> str:
    """e.g. "preprocess: 120,000 documents read (45% of 230 MB), 8,100 docs/s, about 1 min 10 s left".

    Once documents are scored the line counts them first and its rate is theirs. A stage that
    reads its input `reads` times counts every read: "(45% of 3 × 230 MB)". Without a total (or
    with an empty input) there is no percentage and no time left; nor is there a time left before
    1% is read.
    """
    if documents_scored:
        done = f"{_documents(documents_scored)} scored" + (f", {documents_read:,} read" if documents_read else "")
    else:
        done = f"{_documents(documents_read)} read"
    fraction = min(bytes_read / (reads * total_bytes), 1.0) if total_bytes else None
    if fraction is not None:
        of = f"{reads} × {format_bytes(total_bytes)}" if reads > 1 else format_bytes(total_bytes)
        done += f" ({math.floor(fraction * 100)}% of {of})"
    line = f"{stage}: {done}"
    if elapsed > 0:
        rate = (documents_scored or documents_read) / elapsed
        line += f", {rate:,.0f} docs/s" if rate >= 10 else f", {rate:.1f} docs/s"
        if fraction is not None and _MIN_FRACTION_TO_ESTIMATE <= fraction < 1:
            line += f", about {format_duration(elapsed * (1 - fraction) / fraction)} left"
    return line


class ProgressOutput(Protocol):
    """Where a meter's lines go, and how often."""

    interval_seconds: float

    def show(self, line: str) -> None: ...

    def finish(self, line: str) -> None: ...


class _EndProgressLineBeforeLogs(logging.Filter):
    """On the log handlers writing to the terminal: a log record first ends the progress line shown,
    so that it is printed on a line of its own rather than after the progress text."""

    def __init__(self):
        super().__init__()
        self.shown: TerminalLine | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        shown = self.shown
        if shown is not None:
            shown.end()
        return True


_end_line_before_logs = _EndProgressLineBeforeLogs()


class TerminalLine:
    """One line on a terminal, rewritten in place ('\\r'), padded over the longer line it replaces."""

    interval_seconds = TERMINAL_INTERVAL_SECONDS

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._shown_width = 0

    def show(self, line: str) -> None:
        for handler in logging.getLogger().handlers:  # a few handlers, every few seconds
            if getattr(handler, "stream", None) is self._stream and _end_line_before_logs not in handler.filters:
                handler.addFilter(_end_line_before_logs)
        _end_line_before_logs.shown = self
        self._stream.write("\r" + line.ljust(self._shown_width))
        self._stream.flush()
        self._shown_width = len(line)

    def end(self) -> None:
        """A newline after the line shown, if any: what is printed next starts on its own line."""
        if self._shown_width:
            self._shown_width = 0
            self._stream.write("\n")
            self._stream.flush()

    def finish(self, line: str) -> None:
        """The last counts, then a newline; nothing if no line was shown."""
        if self._shown_width:
            self.show(line)
            self.end()


class LogLines:
    """A log line every 30 s; nothing at the end (the stage logs its own totals)."""

    interval_seconds = LOG_INTERVAL_SECONDS

    def show(self, line: str) -> None:
        logging.info("%s", line)

    def finish(self, line: str) -> None:
        pass


def output_for(stream: TextIO) -> ProgressOutput:
    """A line rewritten in place when `stream` is a terminal, log lines otherwise."""
    try:
        is_terminal = stream.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        is_terminal = False
    return TerminalLine(stream) if is_terminal else LogLines()


class ProgressMeter:
    """Counts one stage's documents in this process and, every interval, says how far it is.

    `update()` is the pure part (counts in, the line due or None out, the clock injected);
    `add()` and `add_scored()` are what DoFns call per record: they also increment the Beam
    counters and read the clock only every N records. Threads of one worker share a meter;
    a count lost to a race between them only shifts the line, never the Beam counters.
    """

    def __init__(self, stage: str, total_bytes: int | None, output: ProgressOutput | None = None,
                 clock: Callable[[], float] = time.monotonic, reads: int = 1):
        self.stage = stage
        self.total_bytes = total_bytes
        self.reads = reads
        self.documents_read = self.bytes_read = self.documents_scored = 0
        self._output = output if output is not None else output_for(sys.stderr)
        self._clock = clock
        self._started: float | None = None  # at the first count: set-up (loading a model) is not reading
        self._last_shown = self._last_check = 0.0
        self._check_every = self._until_check = 1
        self._checking = threading.Lock()

    def update(self, documents: int = 0, bytes: int = 0, scored: int = 0) -> str | None:
        """Adds to the counts; returns the line to show when an interval has passed since the last one."""
        self.documents_read += documents
        self.bytes_read += bytes
        self.documents_scored += scored
        return self._line_due(self._clock())

    def line(self) -> str:
        """The line for the counts so far."""
        elapsed = 0.0 if self._started is None else self._clock() - self._started
        return progress_line(self.stage, elapsed, self.documents_read, self.bytes_read, self.total_bytes,
                             self.documents_scored, self.reads)

    def add(self, documents: int = 1, bytes: int = 0) -> None:
        """Per record read: `bytes` is the record's length in the input as stored."""
        _documents_read.inc(documents)
        _bytes_read.inc(bytes)
        self.documents_read += documents
        self.bytes_read += bytes
        self._until_check -= 1
        if self._until_check <= 0:
            self._check()

    def add_scored(self, documents: int = 1) -> None:
        """Per document scored."""
        _documents_scored.inc(documents)
        self.documents_scored += documents
        self._until_check -= 1
        if self._until_check <= 0:
            self._check()

    def finish(self) -> None:
        """End of a bundle: a terminal line gets the last counts and a newline; log lines need nothing."""
        with self._checking:
            self._output.finish(self.line())

    def _check(self) -> None:
        if not self._checking.acquire(blocking=False):
            return  # another thread is checking; this one checks again at its next record
        try:
            now = self._clock()
            since_check = now - self._last_check
            if since_check < _CHECK_SECONDS / 2:
                self._check_every = min(self._check_every * 2, _MAX_CHECK_EVERY)
            elif since_check > _CHECK_SECONDS * 2:
                self._check_every = max(self._check_every // 2, 1)
            self._last_check, self._until_check = now, self._check_every
            line = self._line_due(now)
            if line is not None:
                self._output.show(line)
        finally:
            self._checking.release()

    def _line_due(self, now: float) -> str | None:
        if self._started is None:  # the first count (add() checks the clock at its first record)
            self._started = self._last_shown = self._last_check = now
        if now - self._last_shown < self._output.interval_seconds:
            return None
        self._last_shown = now
        return progress_line(self.stage, now - self._started, self.documents_read, self.bytes_read,
                             self.total_bytes, self.documents_scored, self.reads)


_meters: dict[str, ProgressMeter] = {}
_meters_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class StageProgress:
    """One run of a stage, as its DoFns carry it: made when the pipeline is built (the total from
    the file listing) and pickled with them, so that every DoFn of the run finds the same meter
    in its process, and a later run in that process (a worker pool, a test) starts a fresh one.
    `reads`: how many times the stage reads its input (each read counts towards the total).
    """

    stage: str
    total_bytes: int | None
    reads: int = 1
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    def meter(self) -> ProgressMeter:
        """This run's meter in this process, made by the first DoFn that asks (call it in `setup`)."""
        with _meters_lock:
            meter = _meters.get(self.run_id)
            if meter is None:
                meter = _meters[self.run_id] = ProgressMeter(self.stage, self.total_bytes, reads=self.reads)
                while len(_meters) > _MAX_RUNS:
                    del _meters[next(iter(_meters))]  # the oldest run's
            return meter
