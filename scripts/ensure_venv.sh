#!/usr/bin/env bash
# Creates or refreshes ./.venv when requirements.txt or setup.py changed since the last install.
# Sourced by run_pipeline.sh and run_tests.sh; sets PYTHON to the environment's interpreter.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
stamp="$venv/.installed-from"

find_python() {
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 is required (found none on PATH)." >&2
  return 1
}

wanted="$(cat "$repo_root/requirements.txt" "$repo_root/setup.py" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "Setting up $venv (first run or dependencies changed; takes a few minutes)..." >&2
  base_python="$(find_python)"
  [ -x "$venv/bin/python" ] || "$base_python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r "$repo_root/requirements.txt"
  # Editable install: Beam's multi-process workers (like Dataflow's) import the project as a package.
  "$venv/bin/python" -m pip install --quiet --no-deps -e "$repo_root"
  echo "$wanted" > "$stamp"
fi
PYTHON="$venv/bin/python"
export PYTHON
