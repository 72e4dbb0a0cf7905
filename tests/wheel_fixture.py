"""The project built as a wheel and installed with `pip --target` outside the checkout, once a session.

That is how remote workers see the project (Dataflow's `--setup_file`, an SDK container, a Beam
worker pool): as an installed package, not as the checkout. Test modules import the fixture:
`from tests.wheel_fixture import installed_wheel  # noqa: F401`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def run(command: list[str], cwd, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, (command, result.stderr[-3000:])
    return result


@functools.cache  # each module importing the fixture gets its own fixture definition: build once for all
def _build_and_install(directory: Path) -> Path:
    # Built from a copy of the sources: building writes build/ and *.egg-info beside setup.py, which
    # must not touch the checkout (nor race another build of it).
    source = directory / "source"
    source.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "setup.py", source / "setup.py")
    for package in ("model", "pipelines", "schemas"):
        shutil.copytree(REPO_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-w", str(directory / "dist")], cwd=directory)
    (wheel,) = (directory / "dist").glob("albert_pipelines-*.whl")
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(directory / "site"), str(wheel)],
        cwd=directory)
    return directory / "site"


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory) -> Path:
    """The `--target` directory holding the installed model, pipelines and schemas packages."""
    return _build_and_install(tmp_path_factory.getbasetemp() / "installed_wheel")


def installed_only_env(site: Path) -> dict[str, str]:
    """The environment of a process that can import only the installed copy (run it outside the checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # This interpreter's directory first: Beam's worker pool starts its workers as plain `python`.
    env.update(PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3", PYTHONSAFEPATH="1",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]))
    return env
