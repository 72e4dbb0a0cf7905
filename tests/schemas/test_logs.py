"""The entry points' log set-up drops the known library noise and nothing else."""

from __future__ import annotations

import logging

import pytest

from schemas import logs


@pytest.fixture
def root_handler():
    """A fresh root handler collecting records, restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    root.handlers = [Collect()]
    yield records
    root.handlers, root.level = saved_handlers, saved_level
    logging.getLogger("apache_beam.typehints.native_type_compatibility").setLevel(logging.NOTSET)


def test_known_harmless_warnings_are_dropped_and_real_warnings_kept(root_handler):
    logs.configure_logging()
    logging.warning("Resource module is not available for current platform, memory usage cannot be fetched.")
    logging.warning("Disk almost full")
    logging.getLogger("apache_beam.typehints.native_type_compatibility").info("Converting string literal ...")
    logging.getLogger("pipelines.score").info("read=3 scored=3")
    assert root_handler == ["Disk almost full", "read=3 scored=3"]


def test_configuring_twice_adds_one_filter(root_handler):
    logs.configure_logging()
    logs.configure_logging()
    assert len(logging.getLogger().handlers[0].filters) == 1
