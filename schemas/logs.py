"""Log set-up of the entry points: the stages' own INFO lines, without libraries' known noise.

Each silenced source is named with why it is harmless, so a real warning is never hidden by a
pattern that happens to match it. What TensorFlow's C++ side prints before its logging starts
(CUDA probing on machines without a GPU, oneDNN notices) cannot be silenced from Python:
`run_pipeline.sh` drops those exact lines.
"""

from __future__ import annotations

import logging

# Loggers whose INFO lines say nothing about the job.
_QUIET_LOGGERS = {
    # "Converting string literal type hint to Any": DoFn annotations are postponed
    # (`from __future__ import annotations`), which Beam's type checking cannot resolve and skips.
    "apache_beam.typehints.native_type_compatibility": logging.WARNING,
}

# Warnings logged by libraries about conditions that do not affect the job.
_HARMLESS_WARNINGS = (
    # Beam's RunInference imports `resource` together with a module that needs PyTorch; without
    # PyTorch it concludes that `resource` is missing and says so at every model load. Only its
    # memory metric is lost.
    "Resource module is not available for current platform",
)


class _DropHarmlessWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(prefix) for prefix in _HARMLESS_WARNINGS)


def configure_logging(level: int = logging.INFO) -> None:
    """INFO lines with time and logger name on stderr; the known library noise left out."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also where a handler was already installed (basicConfig skips it)
    for name, logger_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(logger_level)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _DropHarmlessWarnings) for f in handler.filters):
            handler.addFilter(_DropHarmlessWarnings())
