#!/usr/bin/env bash
# The main job: set up, build, install the kernelspec for this user, run the quickstart
# notebook headless, and say where the executed notebook is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

VENV="${SCULPT_CACHE:-$HOME/.cache/sculpt}/venv"
.build/release/sculpt-kernel install --user

mkdir -p build/notebooks
for notebook in notebooks/*.ipynb; do
    out="build/notebooks/$(basename "$notebook")"
    printf '\033[1m== executing %s\033[0m\n' "$notebook"
    "$VENV/bin/python" scripts/run_notebook.py "$notebook" "$out" --kernel sculpt
done
echo
echo "Executed notebooks are in $(pwd)/build/notebooks/"
echo "Open them with: $VENV/bin/jupyter console --kernel sculpt   (or JupyterLab / VS Code, kernel \"Sculpt (LLM compression)\")"
