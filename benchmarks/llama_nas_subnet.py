#!/usr/bin/env python3
"""LLaMA-NAS's last step on SmolLM2-135M: one chosen subnet made a smaller model, measured in Sculpt and in
llama.cpp against the full model, in Float32 and with INT8 (Q8_0) on top.

The subnet: the smallest on a search's front (a `pareto NAME csv PATH` file, written by
benchmarks/llama_nas_tasks_smollm2.sculpt) whose task accuracy is within --within (default 2 points) of
the full model's, as that search measured them; or a genome given with --genome.

Steps, each engine in a process of its own:

1. Sculpt (release binary, `sculpt-kernel repl`): SmolLM2 with its MLP channels sorted by importance
   and `elastic mode=NAS` as the search had it, the subnet activated, then `export gguf` in F32 and in
   Q8_0 (`type=q8_0`: the INT8 line), and the same two for the full model (`subnet max`).
2. For each of the four files:
   - Sculpt: `model load FILE` (Q8_0 blocks kept: the INT8 kernels), `eval accuracy` on every test
     example of austen_lambada (acc, with its standard error) and `eval ppl` on 16,384 tokens of
     Persuasion (the mean loss);
   - Sculpt's speed: `sculpt-kernel bench --model FILE [--keep]`: prefill of --prompt tokens and
     generation of --gen tokens, median of --runs;
   - llama.cpp: its perplexity on the same tokens through llama-cpp-python (gguf_llamacpp.py's worker:
     the same model must compute the same function), and its speed from its own C++ `llama-bench`
     (built by benchmarks/setup_bench.sh from the same llama.cpp), `-p PROMPT -n GEN -t THREADS -r RUNS`.
3. Printed: parameters, file size, accuracy, perplexity in both engines, prefill and generation tokens/s
   in both engines, and each file's speed-up over the full model of the same type, in the same engine.

Usage:
    bash benchmarks/setup_bench.sh
    nice -n 19 .build/release/sculpt-kernel repl < benchmarks/llama_nas_tasks_smollm2.sculpt
    nice -n 19 python3 benchmarks/llama_nas_subnet.py [--front build/nas/linas.csv] [--within 0.02] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import engine_throughput as et  # noqa: E402
import gguf_llamacpp as gl  # noqa: E402

CACHE = Path(os.environ.get("SCULPT_CACHE", Path.home() / ".cache" / "sculpt"))
LLAMA_BENCH = CACHE / "llama-bench" / "bin" / "llama-bench"
# The space the search ran in (benchmarks/llama_nas_tasks_smollm2.sculpt).
SPACE = "elastic mode=NAS ranks=8 widths=100%,75%,50% groups=layer order=importance"


def choose(front: Path, within: float) -> tuple[list[int], dict]:
    """The smallest front subnet whose accuracy is within `within` of the largest subnet's."""
    with open(front, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "accuracy" not in rows[0] or "params" not in rows[0]:
        raise SystemExit(f"{front}: a `pareto NAME csv` file of a search on accuracy,params is needed")
    for row in rows:
        row["error"], row["params"] = float(row["accuracy"]), float(row["params"])
    full = min(rows, key=lambda r: (-r["params"], r["error"]))
    fits = [r for r in rows if r["front"] == "1" and r["error"] <= full["error"] + within]
    best = min(fits, key=lambda r: r["params"])
    return [int(g) for g in best["genome"].split()], {"search_accuracy": 1 - best["error"], "search_params": best["params"],
                                                      "full_search_accuracy": 1 - full["error"], "full_params": full["params"]}


def repl(args, script: str, timeout: float = 7200) -> str:
    proc = subprocess.run(["nice", "-n", "19", str(args.sculpt), "repl"], input=script, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
    return proc.stdout


def export(args, genome: list[int], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / f"{name}.gguf" for name in ("subnet-f32", "subnet-q8_0", "full-f32", "full-q8_0")}
    script = "\n".join([
        "seed 0", "model load smollm2", "data text austen", SPACE,
        "subnet genome=" + ",".join(map(str, genome)),
        f"export gguf {files['subnet-f32']}", f"export gguf {files['subnet-q8_0']} type=q8_0",
        "subnet max",
        f"export gguf {files['full-f32']}", f"export gguf {files['full-q8_0']} type=q8_0", ""])
    text = repl(args, script)
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise SystemExit("export failed: " + ", ".join(missing) + "\n" + text[-2000:])
    return files


def sculpt_quality(args, path: Path) -> dict:
    text = repl(args, f"model load {path}\ndata text austen\ndata tasks austen_lambada\neval accuracy\n"
                      f"eval ppl tokens={gl.TOKENS} window={gl.WINDOW}\n")
    acc = re.search(r"austen_lambada\s+(\d+)\s+([0-9.]+)% ± ([0-9.]+)%", text)
    loss = re.search(r"loss \(nats per token\)\s+([0-9.]+)", text)
    if not acc or not loss:
        return {"status": "error", "detail": text[-1500:]}
    return {"status": "ok", "examples": int(acc.group(1)), "acc": float(acc.group(2)) / 100, "acc_se": float(acc.group(3)) / 100,
            "mean_loss": float(loss.group(1)), "ppl": math.exp(float(loss.group(1)))}


def sculpt_speed(args, path: Path, packed: bool) -> dict:
    command = ["nice", "-n", "19", str(args.sculpt), "bench", "--model", str(path), "--prefill", str(args.prompt),
               "--generate", str(args.gen), "--runs", str(args.runs)] + (["--keep"] if packed else [])
    proc = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        return {"status": "error", "detail": proc.stderr[-1500:]}
    return {"status": "ok", "prefill": out["prefill_tokens_per_second_last_logits"], "generation": out["generation_tokens_per_second"]}


def llama_bench(args, path: Path) -> dict:
    if not LLAMA_BENCH.exists():
        return {"status": "missing", "detail": f"{LLAMA_BENCH} is not built: bash benchmarks/setup_bench.sh"}
    command = ["nice", "-n", "19", str(LLAMA_BENCH), "-m", str(path), "-p", str(args.prompt), "-n", str(args.gen),
               "-t", str(args.threads), "-r", str(args.runs), "-o", "json"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    try:
        runs = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"status": "error", "detail": (proc.stdout + proc.stderr)[-1500:]}
    out = {"status": "ok", "build": runs[0].get("build_commit", "") if runs else ""}
    for run in runs:
        out["prefill" if run.get("n_prompt", 0) > 0 else "generation"] = run["avg_ts"]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--front", type=Path, default=REPO_ROOT / "build" / "nas" / "linas.csv")
    p.add_argument("--within", type=float, default=0.02, help="accuracy the subnet may lose against the full model (fraction)")
    p.add_argument("--genome", help="a genome (comma-separated) instead of choosing from --front")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "nas-subnet")
    p.add_argument("--sculpt", type=Path, default=et.DEFAULT_SCULPT)
    p.add_argument("--python", default=os.environ.get("SCULPT_BENCH_PYTHON") or (str(et.BENCH_VENV_PYTHON) if et.BENCH_VENV_PYTHON.exists() else sys.executable))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--gen", type=int, default=64)
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    if args.genome:
        genome, chosen = [int(g) for g in args.genome.split(",")], {}
    else:
        genome, chosen = choose(args.front, args.within)
    print(f"subnet genome {','.join(map(str, genome))} {json.dumps(chosen)}", flush=True)
    files = export(args, genome, args.out)
    rows = []
    for name, path in files.items():
        print(f"{name} …", flush=True)
        described = gl.describe(path)
        row = {"file": name, **described, "blocks": len(described["ffn"])}
        row["sculpt"] = sculpt_quality(args, path)
        row["llama_ppl"] = gl.run_worker(args, "ppl", path)
        row["sculpt_speed"] = sculpt_speed(args, path, packed="q8_0" in name)
        row["llama_speed"] = llama_bench(args, path)
        rows.append(row)
        print("  " + json.dumps({k: row[k] for k in ("sculpt", "sculpt_speed", "llama_speed")}), flush=True)

    print(f"\nSmolLM2-135M, the chosen subnet against the full model ({args.threads} threads; speeds: prefill of {args.prompt} tokens, "
          f"generation of {args.gen}, median or mean of {args.runs}; accuracy: austen_lambada test, every example)\n")
    print(f"{'file':<12} {'arch':<6} {'blocks':>6} {'MLP widths':<18} {'MB':>6} {'acc ± s.e.':>13} {'ppl Sculpt':>10} {'ppl llama.cpp':>13} "
          f"{'Sculpt pp t/s':>13} {'tg t/s':>7} {'llama.cpp pp':>12} {'tg t/s':>7} {'Sculpt tg ×':>11} {'llama.cpp tg ×':>14}")
    full = {row["types"]: row for row in rows if row["file"].startswith("full")}
    for row in rows:
        widths = row["ffn"]
        label = str(widths[0]) if len(set(widths)) == 1 else f"{min(widths)}–{max(widths)} (mean {sum(widths) / len(widths):.0f})"
        s, lp, ss, ls = row["sculpt"], row["llama_ppl"], row["sculpt_speed"], row["llama_speed"]
        f = full.get(row["types"], {})
        nan = float("nan")
        ratio_s = ss.get("generation", nan) / f.get("sculpt_speed", {}).get("generation", nan)
        ratio_l = ls.get("generation", nan) / f.get("llama_speed", {}).get("generation", nan)
        acc = f"{100 * s.get('acc', nan):.1f} ± {100 * s.get('acc_se', nan):.1f}"
        print(f"{row['file']:<12} {row['architecture']:<6} {row['blocks']:>6} {label:<18} {row['bytes'] / 1e6:>6.1f} {acc:>13} "
              f"{s.get('ppl', nan):>10.3f} {lp.get('ppl', nan):>13.3f} {ss.get('prefill', nan):>13.0f} {ss.get('generation', nan):>7.1f} "
              f"{ls.get('prefill', nan):>12.0f} {ls.get('generation', nan):>7.1f} {ratio_s:>10.2f}× {ratio_l:>13.2f}×")
    for row in rows:
        for key in ("sculpt", "llama_ppl", "sculpt_speed", "llama_speed"):
            if row[key].get("status") != "ok":
                print(f"{row['file']} {key}: {row[key].get('status')}: {row[key].get('detail', '')[:300]}")
    if args.json:
        args.json.write_text(json.dumps({"genome": genome, "chosen": chosen, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
