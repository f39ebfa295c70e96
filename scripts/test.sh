#!/usr/bin/env bash
# Every test: Swift unit and integration tests, the Jupyter conformance suite and behaviour
# tests against the release kernel, the notebooks executed headless with their outputs checked, and
# the same notebooks rendered by JupyterLab in headless Chromium (Tests/browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

VENV="${SCULPT_CACHE:-$HOME/.cache/sculpt}/venv"

printf '\033[1m== swift test\033[0m\n'
swift test --disable-swift-testing 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]|^Test Case .* (started|passed)' 

printf "\033[1m== set-up, conformance, behaviour, notebook and browser tests\033[0m\n"
export SCULPT_KERNEL="$(pwd)/.build/release/sculpt-kernel"
"$VENV/bin/python" -m pytest -rA -q Tests/setup Tests/conformance Tests/notebooks Tests/browser
