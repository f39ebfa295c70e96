#!/usr/bin/env bash
# Installs what Sculpt needs on a fresh Debian machine with Swift, then builds the release kernel.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SCULPT_CACHE="${SCULPT_CACHE:-$HOME/.cache/sculpt}"
VENV="$SCULPT_CACHE/venv"
# chromium and chromium-driver: the browser test renders the notebooks in JupyterLab.
SYSTEM_PACKAGES=(libzmq3-dev libssl-dev libopenblas-dev pkg-config chromium chromium-driver)

say() { printf '\033[1m== %s\033[0m\n' "$*"; }
# Whatever fails, the last line names the step it failed in.
step="checking system packages"
trap 'printf "\033[1msetup failed while %s (scripts/setup.sh); the lines above say why\033[0m\n" "$step" >&2' ERR

missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    step="installing system packages (${missing[*]}) with apt-get"
    say "$step"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python side: the Jupyter clients the tests and the notebook runs use, in a venv of our own.
stamp="$VENV/.requirements.sha256"
wanted=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    step="installing Python packages into $VENV (scripts/requirements.txt)"
    say "$step"
    mkdir -p "$SCULPT_CACHE"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/requirements.txt
    echo "$wanted" > "$stamp"
fi

# The text ships in the repository; the real model is fetched once. Both are verified by sha256
# every time. (BIG-bench is optional: `python3 scripts/fetch_data.py bigbench`.)
step="putting the text and the model into $SCULPT_CACHE (scripts/fetch_data.py)"
say "$step"
"$VENV/bin/python" scripts/fetch_data.py

step="building the release kernel (swift build -c release)"
say "$step"
swift build -c release 2>&1 | { grep -Ev '^\[[0-9]+/[0-9]+\]' || true; }
test -x .build/release/sculpt-kernel
