#!/usr/bin/env python3
"""Sculpt's quantized engine beside llama.cpp on the same GGUF files, and beside PyTorch fp32.

One run, each engine in a process of its own, 2 threads:

* Files: SmolLM2-135M-Instruct as shipped (Q4_1 matrices, Q8_0 embedding), and Q8_0 and Q4_0
  files that Sculpt's `export gguf type=q8_0|q4_0` writes from it (cached under
  ~/.cache/sculpt/bench/, written again with --rewrite).
* Speeds: for every file, `sculpt-kernel bench --keep` (blocks kept, the integer kernels) and
  llama-cpp-python's worker from engine_throughput.py, in alternation for --rounds rounds (A B
  A B ...), so that a busy moment of the shared machine weighs on both. Generation: greedy,
  --generate tokens after a 5-token prompt; prefill: --prefill tokens, last-position logits.
  Other work only ever slows a run, so the table compares each engine's best round and
  also prints the median. PyTorch fp32 (engine_throughput's worker) runs prefill once on the
  shipped file, dequantized.
* Peak resident memory: each process's own VmHWM (Sculpt) and ru_maxrss (both).
* Where one generated token's time goes: `sculpt-kernel bench --keep --profile` (a clock around
  every part of the decode step), beside bytes read per token / measured streaming bandwidth.
* Perplexity: Persuasion, 16384 tokens in windows of 512, for every file: Sculpt with the blocks
  kept against dequantized to Float32 (`model load ... keep=yes|no`, through the REPL), and
  llama.cpp on the same tokens and windows (gguf_llamacpp.py's worker).

Usage:
    bash benchmarks/setup_bench.sh            # venv with torch and llama-cpp-python
    swift build -c release
    python3 benchmarks/quantized_engine.py [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_throughput as et  # noqa: E402
import gguf_llamacpp  # noqa: E402

CACHE = Path(os.environ.get("SCULPT_CACHE", Path.home() / ".cache" / "sculpt"))
SHIPPED = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
BENCH_DIR = CACHE / "bench"
# llama-cpp-python built for AVX2 + FMA only (setup_bench.sh with AVX2_LLAMA=1), for --avx2.
LLAMA_AVX2 = CACHE / "llama-avx2"


def repl(binary: Path, script: str, timeout: float = 3600) -> str:
    proc = subprocess.run([str(binary), "repl"], input=script, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"sculpt-kernel repl failed ({proc.returncode}):\n{et.tail(proc.stderr or proc.stdout)}")
    return proc.stdout


def export_files(binary: Path, rewrite: bool) -> dict:
    """The three files: shipped Q4_1, and Q8_0 and Q4_0 written by `export gguf`."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    files = {"Q4_1 (shipped)": SHIPPED}
    for kind in ("q8_0", "q4_0"):
        path = BENCH_DIR / f"SmolLM2-135M-Instruct.{kind.upper()}.sculpt.gguf"
        if rewrite or not path.exists():
            repl(binary, f"model load smollm2 keep=no\nexport gguf \"{path}\" type={kind}\n")
        files[f"{kind.upper()} (export gguf)"] = path
    return files


def sculpt_bench(binary: Path, model: Path, extra: list, timeout: float) -> dict:
    proc = et.run_process([str(binary), "bench", "--model", str(model), "--keep"] + extra, timeout)
    text = proc["stdout"]
    if proc["returncode"] != 0 or "{" not in text:
        return {"status": "error", "detail": et.tail(proc["stderr"] or text)}
    result = json.loads(text[text.index("{"):text.rindex("}") + 1])
    result.update(status="ok", ru_maxrss_mb=proc["ru_maxrss_mb"], wall_seconds=proc["wall_seconds"])
    return result


def llama_bench(args, model: Path) -> dict:
    worker_args = argparse.Namespace(**vars(args))
    worker_args.model = model
    return et.run_worker("llama.cpp", worker_args)


def torch_prefill(args) -> dict:
    worker_args = argparse.Namespace(**vars(args))
    worker_args.model = SHIPPED
    worker_args.generate = 8
    return et.run_worker("torch", worker_args)


def perplexity(binary: Path, path: Path, args) -> dict:
    """Persuasion perplexity of one file: Sculpt with the blocks dequantized to Float32 and kept
    (from `eval ppl`'s table), and llama.cpp on the same tokens and windows (gguf_llamacpp.py's
    worker, which scores every position of each window as `eval ppl` does)."""
    script = "seed 0\n" + "".join(f"model load \"{path}\" keep={keep}\ndata text austen\neval ppl tokens=16384 window=512\n"
                                  for keep in ("no", "yes"))
    values = [float(v) for v in re.findall(r"perplexity per token\s+([0-9.]+)", repl(binary, script))]
    llama = gguf_llamacpp.run_worker(args, "ppl", path)
    return {"float32": values[0] if len(values) > 0 else None, "kept": values[1] if len(values) > 1 else None,
            "llama.cpp": llama.get("ppl") if llama.get("status") == "ok" else None,
            "llama.cpp_status": llama.get("status"), "llama.cpp_detail": llama.get("detail")}


def best(runs: list, key: str):
    values = [r.get(key) for r in runs if r.get("status") == "ok" and r.get(key) is not None]
    return (max(values), statistics.median(values)) if values else (None, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sculpt-kernel", default=str(et.DEFAULT_SCULPT))
    parser.add_argument("--python", default=None)
    parser.add_argument("--prefill", type=int, default=512)
    parser.add_argument("--generate", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per engine per round (median)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--rewrite", action="store_true", help="write the exported files again")
    parser.add_argument("--skip-perplexity", action="store_true")
    parser.add_argument("--avx2", action="store_true",
                        help="as on a CPU without AVX-512: Sculpt on its AVX2 path (and OpenBLAS's Haswell kernels), "
                             "llama.cpp built for AVX2 (setup_bench.sh AVX2_LLAMA=1), PyTorch limited to AVX2")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.llama_verbose = False
    args.python = args.python or os.environ.get("SCULPT_BENCH_PYTHON") or (
        str(et.BENCH_VENV_PYTHON) if et.BENCH_VENV_PYTHON.exists() else sys.executable)
    if args.avx2:
        # Every engine in this run is a child process and inherits these.
        if not (LLAMA_AVX2 / "llama_cpp").is_dir():
            raise SystemExit(f"{LLAMA_AVX2} is missing: AVX2_LLAMA=1 bash benchmarks/setup_bench.sh")
        os.environ.update(SCULPT_KERNELS="avx2", OPENBLAS_CORETYPE="Haswell", ATEN_CPU_CAPABILITY="avx2",
                          MKL_ENABLE_INSTRUCTIONS="AVX2", ONEDNN_MAX_CPU_ISA="AVX2",
                          PYTHONPATH=os.pathsep.join(filter(None, [str(LLAMA_AVX2), os.environ.get("PYTHONPATH")])))
    binary = Path(args.sculpt_kernel)
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: swift build -c release")
    if not SHIPPED.exists():
        raise SystemExit(f"{SHIPPED} is missing: bash scripts/setup.sh fetches it")

    flags = sorted(f for f in open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
                   if f.startswith("avx") or f in ("fma", "f16c"))
    model_name = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"CPU: {model_name}, {os.cpu_count()} cores; flags: {' '.join(flags)}")
    files = export_files(binary, args.rewrite)
    results = {"cpu": model_name, "flags": flags, "files": {}}

    speed_args = ["--prefill", str(args.prefill), "--generate", str(args.generate), "--runs", str(args.runs)]
    for label, path in files.items():
        print(f"\n{label}: {path.name} ({path.stat().st_size / 1e6:.1f} MB)")
        sculpt, llama = [], []
        for r in range(args.rounds):
            sculpt.append(sculpt_bench(binary, path, speed_args, args.timeout))
            llama.append(llama_bench(args, path))
            print(f"  round {r + 1}: Sculpt gen {sculpt[-1].get('generation_tokens_per_second', 0):.1f} tok/s, "
                  f"prefill {sculpt[-1].get('prefill_tokens_per_second_last_logits', 0):.0f}; llama.cpp gen "
                  f"{llama[-1].get('generation_tokens_per_second', 0):.1f}, prefill {llama[-1].get('prefill_tokens_per_second_last_logits', 0):.0f}"
                  + ("" if sculpt[-1]["status"] == "ok" else f"  [Sculpt: {sculpt[-1].get('detail')}]")
                  + ("" if llama[-1].get("status") == "ok" else f"  [llama.cpp: {llama[-1].get('detail')}]"))
        if label == next(iter(files)):
            print(f"  (Sculpt: kernel path {sculpt[0].get('kernel_path', '?')}, OpenBLAS {sculpt[0].get('blas_kernels', '?')}; "
                  f"llama.cpp: {llama[0].get('system_info', '?')})")
        profile = sculpt_bench(binary, path, ["--profile", "--generate", "64", "--runs", "3"], args.timeout)
        results["files"][label] = {"path": str(path), "sculpt": sculpt, "llama.cpp": llama, "profile": profile}

    torch = torch_prefill(args)
    results["torch"] = torch
    if not args.skip_perplexity:
        print("\nperplexity (Persuasion, 16384 tokens, windows of 512) ...")
        results["perplexity"] = {label: perplexity(binary, path, args) for label, path in files.items()}

    # The tables.
    print(f"\nSpeeds: best of {args.rounds} alternating rounds (median in brackets), {args.threads} threads; "
          f"kernel path {results['files'][next(iter(files))]['sculpt'][0].get('kernel_path', '?')}")
    header = ["file", "engine", f"generation tok/s ({args.generate})", f"prefill {args.prefill} tok/s", "peak RSS MB"]
    rows = []
    torch_prefill_rate = torch.get("prefill_tokens_per_second_last_logits") if torch.get("status") == "ok" else None
    verdicts = {}
    for label, entry in results["files"].items():
        figures = {}
        for engine in ("sculpt", "llama.cpp"):
            runs = entry[engine]
            gen, gen_median = best(runs, "generation_tokens_per_second")
            pre, pre_median = best(runs, "prefill_tokens_per_second_last_logits")
            rss = min((r.get("ru_maxrss_mb") or 1e9) for r in runs) if runs else None
            figures[engine] = (gen, pre, rss)
            rows.append([label, "Sculpt" if engine == "sculpt" else "llama.cpp",
                         f"{et.fmt(gen, '.1f')} ({et.fmt(gen_median, '.1f')})", f"{et.fmt(pre)} ({et.fmt(pre_median)})", et.fmt(rss)])
        (sg, sp, sr), (lg, lp, lr) = figures["sculpt"], figures["llama.cpp"]
        verdicts[label] = {
            "generation_ratio": sg / lg if sg and lg else None,
            "prefill_ratio": sp / lp if sp and lp else None,
            "prefill_vs_pytorch": sp / torch_prefill_rate if sp and torch_prefill_rate else None,
            "rss_ratio": sr / lr if sr and lr else None,
        }
        v = verdicts[label]
        rows.append([label, "Sculpt / llama.cpp", et.fmt(v["generation_ratio"], ".2f") + "x", et.fmt(v["prefill_ratio"], ".2f") + "x",
                     et.fmt(v["rss_ratio"], ".2f") + "x"])
    rows.append(["(dequantized)", "PyTorch fp32", "—", et.fmt(torch_prefill_rate), et.fmt(torch.get("ru_maxrss_mb"))])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths]] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    results["verdicts"] = verdicts
    print("\nTargets: generation >= llama.cpp, prefill >= llama.cpp and > PyTorch fp32, peak RSS within 25 % of llama.cpp")
    for label, v in verdicts.items():
        def ok(x, bound):
            return "n/a" if x is None else ("PASS" if x >= bound else "FAIL")
        print(f"  {label}: generation {ok(v['generation_ratio'], 1.0)}, prefill {ok(v['prefill_ratio'], 1.0)}, "
              f"prefill vs PyTorch {ok(v['prefill_vs_pytorch'], 1.0000001)}, "
              f"memory {'n/a' if v['rss_ratio'] is None else ('PASS' if v['rss_ratio'] <= 1.25 else 'FAIL')}")

    print("\nOne generated token (at position ~37), Sculpt, blocks kept:")
    for label, entry in results["files"].items():
        p = entry["profile"]
        if p.get("status") != "ok":
            print(f"  {label}: {p.get('detail')}")
            continue
        total = p["profile_total_seconds_per_token"]
        parts = p["profile_seconds_per_token"]
        print(f"  {label}: {total * 1e3:.2f} ms per token; bytes read {p['bytes_read_per_token'] / 1e6:.1f} MB / streaming bandwidth "
              f"{p['stream_bandwidth_bytes_per_second'] / 1e9:.1f} GB/s = {p['bandwidth_bound_seconds_per_token'] * 1e3:.2f} ms "
              f"({p['bandwidth_bound_seconds_per_token'] / total:.0%} of the step)")
        for name in p["profile_order"]:
            print(f"      {name:<28} {parts[name] * 1e3:7.3f} ms  {parts[name] / total:6.1%}")
        accounted = sum(parts.values())
        print(f"      {'(between parts, clocks)':<28} {(total - accounted) * 1e3:7.3f} ms  {(total - accounted) / total:6.1%}")

    if "perplexity" in results:
        print("\nPerplexity (Persuasion, 16384 tokens, windows of 512); the target: blocks kept within 0.2 % of Float32")
        print(f"{'file':<20} {'Float32':>8} {'kept':>8} {'kept vs Float32':>16} {'llama.cpp':>10} {'llama.cpp vs Float32':>21}")
        for label, ppl in results["perplexity"].items():
            f32, kept, llama = ppl["float32"], ppl["kept"], ppl["llama.cpp"]
            gap = lambda x: et.fmt((x / f32 - 1) * 100 if f32 and x else None, '+.3f') + " %"
            print(f"{label:<20} {et.fmt(f32, '.3f'):>8} {et.fmt(kept, '.3f'):>8} {gap(kept):>16} {et.fmt(llama, '.3f'):>10} {gap(llama):>21}")
            if ppl["llama.cpp_status"] != "ok":
                print(f"    llama.cpp: {ppl['llama.cpp_detail']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
