import os
import pathlib
import subprocess
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def kernel_binary():
    explicit = os.environ.get("SCULPT_KERNEL")
    if explicit:
        return explicit
    release = REPO / ".build/release/sculpt-kernel"
    return str(release if release.exists() else REPO / ".build/debug/sculpt-kernel")


@pytest.fixture(scope="session", autouse=True)
def sculpt_kernelspec():
    """A kernelspec for the built kernel in a temporary JUPYTER_PATH, so tests never use a user install."""
    if os.environ.get("SCULPT_TEST_JUPYTER_PATH"):
        yield os.environ["SCULPT_TEST_JUPYTER_PATH"]
        return
    directory = tempfile.mkdtemp(prefix="sculpt-jupyter-")
    subprocess.run([kernel_binary(), "install", "--jupyter-path", directory], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = directory + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    os.environ["SCULPT_TEST_JUPYTER_PATH"] = directory
    yield directory
