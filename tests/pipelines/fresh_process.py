"""Token ids of a preprocessing output's transform graph, computed in a fresh Python process.

A fresh process has loaded none of the pipeline's modules or files: what it computes depends only
on what transform_fn/ holds (and `import tensorflow_text`, which registers the tokenizer ops).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from schemas import features

_SCRIPT = (
    "import json, sys, tensorflow as tf, tensorflow_text, tensorflow_transform as tft\n"
    "output_dir, texts = sys.argv[1], json.loads(sys.stdin.read())\n"
    "out = tft.TFTransformOutput(output_dir).transform_raw_features("
    "{'text': tf.constant(texts)}, drop_unused_features=True)\n"
    f"print(json.dumps(out[{features.TOKEN_IDS!r}].numpy().tolist()))\n"
)


def token_ids_in_fresh_process(output_dir: str, texts: list[str]) -> list[tuple[int, ...]]:
    """The transform graph's token ids of `texts`, one tuple per text, in input order."""
    fresh = subprocess.run([sys.executable, "-c", _SCRIPT, str(output_dir)], input=json.dumps(texts),
                           capture_output=True, text=True, timeout=180, check=False,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    return [tuple(row) for row in json.loads(fresh.stdout.strip().splitlines()[-1])]
