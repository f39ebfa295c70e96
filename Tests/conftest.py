"""Shared set-up for the Python tests that drive Sculpt over real Jupyter sockets (conformance,
behaviour and notebook tests).

Before any test (and so before any kernel) starts, the kernel binary installs its kernelspec
into a temporary directory and JUPYTER_PATH points there, so the tests never depend on a
user-level or system-level install. Two kernelspecs are written:

* ``sculpt``             -- exactly what ``sculpt-kernel install`` writes;
* ``sculpt-small-limit`` -- the same argv plus ``--max-message-bytes 65536``, for the
                            oversized-message test.

The binary comes from $SCULPT_KERNEL; by default .build/release/sculpt-kernel if it exists,
else .build/debug/sculpt-kernel (both relative to the repository root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
KERNEL_NAME = "sculpt"
SMALL_LIMIT_KERNEL_NAME = "sculpt-small-limit"
SMALL_LIMIT_BYTES = 65536


def kernel_binary() -> Path:
    """The kernel executable the tests run (absolute)."""
    configured = os.environ.get("SCULPT_KERNEL")
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else (REPO_ROOT / path)
    release = REPO_ROOT / ".build" / "release" / "sculpt-kernel"
    if release.exists():
        return release
    return REPO_ROOT / ".build" / "debug" / "sculpt-kernel"


def install_kernelspecs(jupyter_dir: Path, binary: Path) -> Path:
    """Installs ``sculpt`` with the binary itself and derives ``sculpt-small-limit`` from it."""
    done = subprocess.run(
        [str(binary), "install", "--jupyter-path", str(jupyter_dir)],
        capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`{binary} install --jupyter-path {jupyter_dir}` failed "
            f"({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec = json.loads((spec_dir / "kernel.json").read_text())

    small = dict(spec)
    small["argv"] = list(spec["argv"]) + ["--max-message-bytes", str(SMALL_LIMIT_BYTES)]
    small["display_name"] = spec["display_name"] + f" (max {SMALL_LIMIT_BYTES} bytes)"
    small_dir = jupyter_dir / "kernels" / SMALL_LIMIT_KERNEL_NAME
    small_dir.mkdir(parents=True, exist_ok=True)
    (small_dir / "kernel.json").write_text(json.dumps(small, indent=2))
    return spec_dir


@pytest.fixture(scope="session", autouse=True)
def sculpt_jupyter_path():
    """The temporary JUPYTER_PATH holding the test kernelspecs; set for the whole session."""
    binary = kernel_binary()
    if not binary.exists():
        pytest.exit(f"no kernel binary at {binary} (build it, or set SCULPT_KERNEL)", returncode=2)
    jupyter_dir = Path(tempfile.mkdtemp(prefix="sculpt-jupyter-path-"))
    install_kernelspecs(jupyter_dir, binary)
    saved = {name: os.environ.get(name) for name in ("JUPYTER_PATH",)}
    os.environ["JUPYTER_PATH"] = str(jupyter_dir)
    try:
        yield jupyter_dir
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(jupyter_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def sculpt_binary() -> Path:
    """The kernel executable under test."""
    return kernel_binary()


@pytest.fixture(scope="session")
def executed_notebook(tmp_path_factory):
    """``executed_notebook(name, timeout)`` executes notebooks/NAME.ipynb headless, once per test
    session, and returns ``(notebook, path of the executed copy)``. The notebook tests check its
    outputs and the browser test opens the same file in JupyterLab: the quickstart takes minutes
    on the real model, so it must not run twice. A failed run is remembered and re-raised too."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from run_notebook import execute  # a script of the project, imported here only

    directory = tmp_path_factory.mktemp("executed-notebooks")
    runs = {}

    def run(name: str, timeout: int = 1800):
        if name not in runs:
            out = directory / f"{name}.ipynb"
            try:
                notebook, _ = execute(REPO_ROOT / "notebooks" / f"{name}.ipynb", out, kernel=KERNEL_NAME,
                                      timeout=timeout)
                runs[name] = (notebook, out)
            except Exception as error:  # noqa: BLE001 -- re-raised to every caller
                runs[name] = error
        if isinstance(runs[name], Exception):
            raise runs[name]
        return runs[name]

    return run
