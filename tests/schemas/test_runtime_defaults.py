"""TensorFlow's process-wide defaults: set before TensorFlow loads, never over the user's own."""

from __future__ import annotations

import os
import subprocess
import sys

from schemas import runtime_defaults

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Imports a stage module in a fresh process and prints the variable and whether TensorFlow itself
# runs oneDNN's kernels.
_PROBE = """
import importlib, os, sys
importlib.import_module(sys.argv[1])
from tensorflow.python.util import _pywrap_util_port
print(os.environ["TF_ENABLE_ONEDNN_OPTS"], _pywrap_util_port.IsMklEnabled())
"""


def _probe(module: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    environment.update(env, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run([sys.executable, "-c", _PROBE, module], cwd=REPO_ROOT, env=environment,
                               capture_output=True, text=True, check=True)
    return completed.stdout.strip().splitlines()[-1]


def test_defaults_fill_only_unset_variables(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    runtime_defaults.apply_tensorflow_defaults()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # the user's choice stands


def test_trainer_turns_onednn_on_before_tensorflow_loads():
    assert _probe("model.trainer") == "1 True"


def test_users_setting_turns_onednn_off_in_the_scorer():
    assert _probe("pipelines.score", TF_ENABLE_ONEDNN_OPTS="0") == "0 False"
