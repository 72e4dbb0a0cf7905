"""TensorFlow's process-wide settings, set by every entry point before TensorFlow is imported.

TensorFlow reads these environment variables once, when it loads, so they take effect only in a
process that calls `apply_tensorflow_defaults()` before its first `import tensorflow` (the
stages' and benchmarks' modules do so at their top). Each is a default: a variable already set
in the environment wins, e.g. `TF_ENABLE_ONEDNN_OPTS=0` turns oneDNN off again.
"""

from __future__ import annotations

import os

TENSORFLOW_ENVIRONMENT = {
    # Keep TensorFlow's C++ start-up chatter out of job logs.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # oneDNN's CPU kernels for matmuls and the like. TensorFlow turns them on by itself only on some
    # CPUs; on the benchmark machine's AVX2 CPU it ran Eigen's, and oneDNN's trained both encoders
    # faster (BENCHMARKS.md, "CPU kernels: oneDNN").
    "TF_ENABLE_ONEDNN_OPTS": "1",
}


def apply_tensorflow_defaults() -> None:
    """Sets each variable of TENSORFLOW_ENVIRONMENT that the environment does not set already."""
    for name, value in TENSORFLOW_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
