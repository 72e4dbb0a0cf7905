"""albert-pipelines: Beam + tf.Transform preprocessing, Keras encoders, Beam bulk scoring.

`pip install .` (or `--setup_file ./setup.py` on Dataflow) installs the three packages and the
pinned libraries their code imports on workers.
"""

import setuptools

REQUIRED_PACKAGES = [
    "apache-beam[gcp]==2.77.0",
    "tensorflow==2.21.0",
    "tensorflow-transform==1.21.0",
    "tensorflow-text==2.21.1",
    "tfx-bsl==1.21.0",
    "tensorflow-metadata==1.21.0",
    "pyarrow==25.0.1",
    "numpy==2.4.6",
    "PyYAML==6.0.4",
    "google-crc32c==1.9.0",
    "matplotlib==3.11.2",
    "tensorboard==2.21.0",
    "scikit-learn==1.9.1",
    "keras-hub==0.32.0",
    "sentencepiece==0.2.3",
    "safetensors==0.8.0",
]

setuptools.setup(
    name="albert-pipelines",
    version="0.2.0",  # the same as schemas.output_dirs.PROJECT_VERSION
    description="Batch text classification: Beam + tf.Transform preprocessing, Keras encoders, Beam scoring.",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["schemas", "schemas.*", "pipelines", "pipelines.*",
                                               "model", "model.*"]),
    install_requires=REQUIRED_PACKAGES,
)
