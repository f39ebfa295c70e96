#!/usr/bin/env python3
"""Latency of Sculpt next to ipykernel, both started the way a notebook starts them.

Both kernels are launched by jupyter_client's KernelManager from kernelspecs written into one
temporary JUPYTER_PATH (Sculpt's by `sculpt-kernel install --jupyter-path`, ipykernel's as a
kernel.json running this Python's `-m ipykernel_launcher -f {connection_file}`).

Measured:

* execute round trip -- a trivial command (Sculpt `seed 1`, ipykernel `1`), timed from sending
  the execute_request until BOTH its execute_reply (shell) and its `status: idle` (iopub) have
  arrived; median and p99 (nearest rank) over --n requests, after --warmup unmeasured ones.
* start-up -- from the Popen of the kernel process to the first kernel_info_reply, over
  --starts fresh starts.

Timing uses a lean client (raw pyzmq + jupyter_client's Session for signing; replies are read
with minimal JSON parsing) so the figures are the kernel's, not the client library's. Its
shell socket reconnects every 1 ms: with libzmq's default 100 ms reconnect interval a start-up
figure would mostly measure the client's retry timer. `--startup-client jupyter` instead times
the first kernel_info_reply to a BlockingKernelClient (libzmq's default 100 ms reconnect
interval included). Neither times wait_for_ready: it always ends by draining iopub until 0.2 s
pass in silence, so it returns at least 200 ms after the kernel was ready, whatever the kernel.

Usage:
    ~/.cache/sculpt/venv/bin/python benchmarks/kernel_latency.py [--n 500] [--starts 5]

The Sculpt binary is $SCULPT_KERNEL, or --sculpt-kernel, or by default
.build/release/sculpt-kernel if it exists, else .build/debug/sculpt-kernel.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
from jupyter_client import launcher
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

REPO_ROOT = Path(__file__).resolve().parents[1]
DELIM = b"<IDS|MSG>"

TARGETS = {"median_ms": 1.0, "p99_ms": 5.0, "startup_ms": 300.0}

KERNELS = {
    # name -> (kernelspec name, trivial command)
    "sculpt": ("bench-sculpt", "seed 1"),
    "ipykernel": ("bench-ipykernel", "1"),
}


# ---------------------------------------------------------------------------------------------
# Kernelspecs
# ---------------------------------------------------------------------------------------------


def default_sculpt_binary() -> Path:
    configured = os.environ.get("SCULPT_KERNEL")
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else REPO_ROOT / path
    release = REPO_ROOT / ".build" / "release" / "sculpt-kernel"
    return release if release.exists() else REPO_ROOT / ".build" / "debug" / "sculpt-kernel"


def install_kernelspecs(jupyter_dir: Path, sculpt_binary: Path) -> None:
    subprocess.run(
        [str(sculpt_binary), "install", "--jupyter-path", str(jupyter_dir), "--name", KERNELS["sculpt"][0]],
        check=True, capture_output=True, timeout=60,
    )
    ipy_dir = jupyter_dir / "kernels" / KERNELS["ipykernel"][0]
    ipy_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ipykernel (benchmark)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (ipy_dir / "kernel.json").write_text(json.dumps(spec, indent=2))


# ---------------------------------------------------------------------------------------------
# A lean client
# ---------------------------------------------------------------------------------------------


class LeanClient:
    """DEALER on shell, SUB on iopub; signs with Session, reads with minimal parsing."""

    def __init__(self, km: KernelManager, context: zmq.Context):
        info = km.get_connection_info()
        self.session = Session(key=km.session.key, signature_scheme=km.session.signature_scheme)
        base = f"{info['transport']}://{info['ip']}:"
        self.shell = context.socket(zmq.DEALER)
        self.shell.linger = 0
        self.shell.setsockopt(zmq.RECONNECT_IVL, 1)
        self.shell.connect(base + str(info["shell_port"]))
        self.iopub = context.socket(zmq.SUB)
        self.iopub.linger = 0
        self.iopub.setsockopt(zmq.RECONNECT_IVL, 1)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(base + str(info["iopub_port"]))
        self.poller = zmq.Poller()
        self.poller.register(self.shell, zmq.POLLIN)
        self.poller.register(self.iopub, zmq.POLLIN)

    def close(self) -> None:
        self.shell.close(0)
        self.iopub.close(0)

    def frames(self, msg_type: str, content: dict) -> tuple[str, list[bytes]]:
        msg = self.session.msg(msg_type, content)
        return msg["header"]["msg_id"], self.session.serialize(msg)

    @staticmethod
    def parts(frames: list[bytes]) -> tuple[dict, dict, list[bytes]]:
        """(header, parent_header, raw frames after the delimiter)."""
        i = frames.index(DELIM)
        return json.loads(frames[i + 2]), json.loads(frames[i + 3]), frames[i + 1:]

    def kernel_info(self, timeout: float = 60.0) -> float:
        """Sends kernel_info_request; returns the perf_counter time its reply arrived."""
        msg_id, frames = self.frames("kernel_info_request", {})
        self.shell.send_multipart(frames)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.shell.poll(100):
                got = self.shell.recv_multipart()
                arrived = time.perf_counter()
                _, parent, _ = self.parts(got)
                if parent.get("msg_id") == msg_id:
                    return arrived
        raise TimeoutError("no kernel_info_reply")

    def wait_iopub_ready(self, timeout: float = 60.0) -> None:
        """Like wait_for_ready: repeat kernel_info until iopub delivers, then drain."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self.kernel_info()
            if self.iopub.poll(200):
                break
        else:
            raise TimeoutError("iopub never delivered")
        while self.iopub.poll(50):
            self.iopub.recv_multipart()
        while self.shell.poll(0):
            self.shell.recv_multipart()

    def execute_roundtrip(self, code: str, timeout: float = 30.0) -> float:
        """Seconds from sending the execute_request to having its reply AND its idle."""
        msg_id, frames = self.frames("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True,
        })
        got_reply = got_idle = False
        start = time.perf_counter()
        self.shell.send_multipart(frames)
        deadline = start + timeout
        while not (got_reply and got_idle):
            ready = dict(self.poller.poll(max(1, int((deadline - time.perf_counter()) * 1000))))
            if not ready:
                raise TimeoutError(f"no reply/idle for {code!r}")
            if self.shell in ready:
                header, parent, rest = self.parts(self.shell.recv_multipart())
                if parent.get("msg_id") == msg_id:
                    status = json.loads(rest[4]).get("status")
                    if status != "ok":
                        raise RuntimeError(f"{code!r} failed: {status}")
                    got_reply = True
            if self.iopub in ready:
                header, parent, rest = self.parts(self.iopub.recv_multipart())
                if (parent.get("msg_id") == msg_id and header.get("msg_type") == "status"
                        and json.loads(rest[4]).get("execution_state") == "idle"):
                    got_idle = True
        return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


class PopenClock:
    """Records when jupyter_client's launcher calls Popen (the start of a kernel start-up)."""

    def __init__(self):
        self.real = launcher.Popen
        self.started: float | None = None

    def __enter__(self):
        def timed_popen(*args, **kwargs):
            self.started = time.perf_counter()
            return self.real(*args, **kwargs)
        launcher.Popen = timed_popen
        return self

    def __exit__(self, *exc):
        launcher.Popen = self.real


def start_kernel(spec_name: str) -> KernelManager:
    km = KernelManager(kernel_name=spec_name)
    km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return km


def stop_kernel(km: KernelManager) -> None:
    try:
        km.shutdown_kernel(now=True)
    except Exception as error:  # a benchmark should report, not die, on a slow shutdown
        print(f"  (shutdown: {error})", file=sys.stderr)


def measure_startup(spec_name: str, starts: int, client: str, context: zmq.Context) -> list[float]:
    times = []
    for _ in range(starts):
        with PopenClock() as clock:
            km = start_kernel(spec_name)
        try:
            if client == "jupyter":
                kc = km.client()
                kc.start_channels()
                msg_id = kc.kernel_info()
                while True:
                    reply = kc.get_shell_msg(timeout=60)
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
                arrived = time.perf_counter()
                kc.stop_channels()
            else:
                lean = LeanClient(km, context)
                arrived = lean.kernel_info()
                lean.close()
            times.append(arrived - clock.started)
        finally:
            stop_kernel(km)
    return times


def measure_execute(spec_name: str, code: str, n: int, warmup: int, context: zmq.Context) -> list[float]:
    km = start_kernel(spec_name)
    lean = LeanClient(km, context)
    try:
        lean.wait_iopub_ready()
        for _ in range(warmup):
            lean.execute_roundtrip(code)
        return [lean.execute_roundtrip(code) for _ in range(n)]
    finally:
        lean.close()
        stop_kernel(km)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="measured execute requests per kernel (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured execute requests first (default 50)")
    parser.add_argument("--starts", type=int, default=5, help="kernel starts per kernel (default 5)")
    parser.add_argument("--kernels", default="sculpt,ipykernel", help="comma-separated: sculpt, ipykernel")
    parser.add_argument("--sculpt-kernel", type=Path, default=None, help="the Sculpt binary (default: see above)")
    parser.add_argument("--startup-client", choices=["lean", "jupyter"], default="lean",
                        help="time start-up to the first kernel_info_reply of the lean client "
                             "(default) or of a BlockingKernelClient")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    names = [name.strip() for name in args.kernels.split(",") if name.strip()]
    unknown = set(names) - set(KERNELS)
    if unknown:
        parser.error(f"unknown kernels: {', '.join(sorted(unknown))}")
    binary = (args.sculpt_kernel or default_sculpt_binary()).resolve()
    if "sculpt" in names and not binary.exists():
        parser.error(f"no Sculpt binary at {binary}")

    jupyter_dir = Path(tempfile.mkdtemp(prefix="sculpt-bench-"))
    os.environ["JUPYTER_PATH"] = str(jupyter_dir)
    install_kernelspecs(jupyter_dir, binary)
    context = zmq.Context()
    results: dict[str, dict] = {}
    try:
        for name in names:
            spec_name, code = KERNELS[name]
            print(f"{name}: {args.starts} starts ...", file=sys.stderr, flush=True)
            startup = measure_startup(spec_name, args.starts, args.startup_client, context)
            print(f"{name}: {args.warmup} + {args.n} executes of {code!r} ...", file=sys.stderr, flush=True)
            rtts = measure_execute(spec_name, code, args.n, args.warmup, context)
            results[name] = {
                "code": code,
                "median_ms": statistics.median(rtts) * 1e3,
                "p99_ms": p99(rtts) * 1e3,
                "mean_ms": statistics.fmean(rtts) * 1e3,
                "max_ms": max(rtts) * 1e3,
                "startup_median_ms": statistics.median(startup) * 1e3,
                "startup_max_ms": max(startup) * 1e3,
                "startup_all_ms": [t * 1e3 for t in startup],
            }
    finally:
        context.term()
        shutil.rmtree(jupyter_dir, ignore_errors=True)

    print()
    print(f"Sculpt binary: {binary}")
    print(f"execute: {args.n} requests after {args.warmup} warm-up; start-up: {args.starts} starts "
          f"({args.startup_client} client); host: {os.cpu_count()} CPUs")
    print()
    rows = [
        ("execute median (ms)", "median_ms", TARGETS["median_ms"]),
        ("execute p99 (ms)", "p99_ms", TARGETS["p99_ms"]),
        ("execute mean (ms)", "mean_ms", None),
        ("execute max (ms)", "max_ms", None),
        ("start-up median (ms)", "startup_median_ms", TARGETS["startup_ms"]),
        ("start-up max (ms)", "startup_max_ms", TARGETS["startup_ms"]),
    ]
    header = f"{'':24}" + "".join(f"{name:>12}" for name in names)
    both = "sculpt" in results and "ipykernel" in results
    if both:
        header += f"{'sculpt/ipyk':>13}"
    header += f"{'target':>10}{'Sculpt':>8}"
    print(header)
    print("-" * len(header))
    for label, key, target in rows:
        line = f"{label:24}" + "".join(f"{results[name][key]:12.3f}" for name in names)
        if both:
            line += f"{results['sculpt'][key] / results['ipykernel'][key]:13.2f}"
        if target is not None:
            line += f"{'<= ' + format(target, 'g'):>10}"
            if "sculpt" in results:
                line += f"{'ok' if results['sculpt'][key] <= target else 'MISS':>8}"
        print(line)
    for name in names:
        starts = ", ".join(f"{t:.0f}" for t in results[name]["startup_all_ms"])
        print(f"start-ups of {name} (ms): {starts}")

    if args.json:
        args.json.write_text(json.dumps({"binary": str(binary), "n": args.n, "warmup": args.warmup,
                                         "starts": args.starts, "startup_client": args.startup_client,
                                         "targets": TARGETS, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
