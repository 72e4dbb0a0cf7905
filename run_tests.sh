#!/usr/bin/env bash
# Runs the test suite in ./.venv (created on first use). Extra arguments go to pytest,
# e.g. `./run_tests.sh -m "not slow"` for the fast tier only.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh
exec "$PYTHON" -m pytest "$@"
