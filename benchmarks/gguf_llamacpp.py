#!/usr/bin/env python3
"""Sculpt's exported GGUF files run by llama.cpp: the same perplexity, and the speed a narrower subnet buys.

For every file given (default: build/exports/*.gguf, written by benchmarks/shears_sqft_smollm2.sculpt):

* Sculpt -- the release binary's `sculpt-kernel repl`: `model load FILE`, `data text austen`,
  `eval ppl tokens=16384 window=512` (Persuasion); its mean loss is parsed.
* llama.cpp -- llama-cpp-python's low-level API in a process of its own per file, 2 threads:
  Persuasion tokenized by llama.cpp's own tokenizer (no BOS, no special tokens), the first 16,385
  tokens scored in Sculpt's windows (512 tokens, overlapping by one, every token after the first
  scored once) from all-position logits in float64. The first 16,385 token ids are also compared
  with the HF-tokenizers build of the GGUF's vocabulary (benchmarks/task_accuracy.py), which
  matches Sculpt's.
  Speed: engine_throughput.py's llama.cpp worker on the same file: prefill of 512 tokens and
  greedy generation of 128 tokens after a 5-token prompt, tokens/s, median of --runs.

Adapters: for every build/exports-lora/NAME-adapters.gguf (benchmarks/lora_gguf_smollm2.sculpt),
llama.cpp runs NAME-base-f32.gguf with the adapter file applied through its LoRA loader at scale 1
(llama_adapter_lora_init + llama_set_adapters_lora, as --lora does), against Sculpt's perplexity
of NAME-merged-f32.gguf, the same session's merged export.

Printed: each file's architecture, MLP widths and size; both perplexities and their relative
difference; llama.cpp's prefill and generation speed, and each file's speed relative to the first
file of the same tensor type with the full MLP (the dense model). Exit 1 if any perplexity differs
by more than --tolerance (1 %).

Usage:
    bash benchmarks/setup_bench.sh
    .build/release/sculpt-kernel repl < benchmarks/shears_sqft_smollm2.sculpt
    nice -n 19 python3 benchmarks/gguf_llamacpp.py [FILES…] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import engine_throughput as et  # noqa: E402

CACHE = Path(os.environ.get("SCULPT_CACHE", Path.home() / ".cache" / "sculpt"))
TOKENS, WINDOW = 16384, 512
TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 8: "Q8_0"}


def persuasion() -> str:
    with open(CACHE / "data" / "austen" / "persuasion.txt", encoding="utf-8", newline="") as f:
        return f.read()


def windows(n: int):
    """Sculpt's `eval ppl` plan: (start, end, scored_from) over n tokens."""
    plans, start, previous_end = [], 0, 1
    while previous_end < n:
        end = min(start + WINDOW, n)
        plans.append((start, end, previous_end))
        previous_end, start = end, min(start + WINDOW, end - 1)
    return plans


def llama_ppl_worker(args) -> dict:
    import ctypes
    import numpy as np
    import llama_cpp as lc

    @lc.llama_log_callback
    def quiet(level, text, user_data):
        if level == 4:
            sys.stderr.write(text.decode("utf-8", errors="replace"))
    lc.llama_log_set(quiet, ctypes.c_void_p(0))
    lc.llama_backend_init()
    mparams = lc.llama_model_default_params()
    mparams.n_gpu_layers = 0
    model = lc.llama_model_load_from_file(str(args.model).encode(), mparams)
    if not model:
        return {"status": "error", "detail": "llama_model_load_from_file failed"}
    vocab = lc.llama_model_get_vocab(model)
    n_vocab = lc.llama_vocab_n_tokens(vocab)
    text = persuasion().encode("utf-8")
    buffer = (lc.llama_token * (len(text) + 16))()
    count = lc.llama_tokenize(vocab, text, len(text), buffer, len(buffer), False, False)
    ids = [int(buffer[i]) for i in range(count)][:TOKENS + 1]

    cparams = lc.llama_context_default_params()
    cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = WINDOW
    cparams.n_threads = cparams.n_threads_batch = args.threads
    ctx = lc.llama_init_from_model(model, cparams)
    if getattr(args, "adapter", None):
        # llama.cpp's --lora: the adapter file applied at scale 1 (its alpha / rank inside).
        adapter = lc.llama_adapter_lora_init(model, str(args.adapter).encode())
        if not adapter:
            return {"status": "error", "detail": f"llama_adapter_lora_init failed for {args.adapter}"}
        adapters = (type(adapter) * 1)(adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if lc.llama_set_adapters_lora(ctx, adapters, 1, scales) != 0:
            return {"status": "error", "detail": "llama_set_adapters_lora failed"}
    memory = lc.llama_get_memory(ctx)
    batch = lc.llama_batch_init(WINDOW, 0, 1)
    nll, scored = 0.0, 0
    started = time.perf_counter()
    for start, end, scored_from in windows(len(ids)):
        lc.llama_memory_clear(memory, True)
        batch.n_tokens = end - start
        for i, token in enumerate(ids[start:end]):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, i, 1, True
            batch.seq_id[i][0] = 0
        if lc.llama_decode(ctx, batch) != 0:
            return {"status": "error", "detail": "llama_decode failed"}
        logits = np.ctypeslib.as_array(lc.llama_get_logits(ctx), shape=(end - start, n_vocab)).astype(np.float64)
        for pos in range(scored_from - 1, end - 1):
            row = logits[pos - start]
            m = row.max()
            nll += m + math.log(np.exp(row - m).sum()) - row[ids[pos + 1]]
            scored += 1
    seconds = time.perf_counter() - started
    lc.llama_batch_free(batch)
    lc.llama_free(ctx)
    lc.llama_model_free(model)
    result = {"status": "ok", "tokens_scored": scored, "mean_loss": nll / scored, "ppl": math.exp(nll / scored),
              "seconds": seconds, "first_ids": ids}
    try:
        import task_accuracy as ta
        gguf = et.GGUFFile(args.model)
        encode, _ = ta.build_tokenizer(gguf)
        gguf.close()
        result["tokenizer_matches_hf"] = encode(persuasion())[:TOKENS + 1] == ids
    except Exception as error:  # tokenizers missing: say so, the perplexities still compare
        result["tokenizer_matches_hf"] = f"not checked: {error}"
    del result["first_ids"]
    return result


def sculpt_ppl(args, path: Path) -> dict:
    script = f"model load {path}\ndata text austen\neval ppl tokens={TOKENS} window={WINDOW}\n"
    proc = subprocess.run([str(args.sculpt), "repl"], input=script, capture_output=True, text=True, timeout=3600)
    loss = re.search(r"loss \(nats per token\)\s+([0-9.]+)", proc.stdout)
    scored = re.search(r"tokens scored\s+(\d+)", proc.stdout)
    if not loss:
        return {"status": "error", "detail": (proc.stdout + proc.stderr)[-1500:]}
    return {"status": "ok", "mean_loss": float(loss.group(1)), "ppl": math.exp(float(loss.group(1))), "tokens_scored": int(scored.group(1))}


def run_worker(args, mode: str, path: Path, adapter: Path | None = None) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    extra = ["--adapter", str(adapter)] if adapter else []
    proc = subprocess.run([args.python, __file__, "--worker", mode, "--threads", str(args.threads), "--runs", str(args.runs), *extra, str(path)],
                          capture_output=True, text=True, env=env, timeout=3600)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"status": "error", "detail": proc.stderr[-1500:]}


def describe(path: Path) -> dict:
    g = et.GGUFFile(path)
    arch = g.metadata.get("general.architecture")
    widths = g.metadata.get(f"{arch}.feed_forward_length")
    types = sorted({TYPE_NAMES.get(t, str(t)) for name, (_, t, _) in g.tensors.items() if name.endswith("weight") and "norm" not in name})
    out = {"architecture": arch, "ffn": widths if isinstance(widths, list) else [widths] * int(g.metadata[f"{arch}.block_count"]),
           "types": "+".join(types), "bytes": path.stat().st_size}
    g.close()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="*", type=Path)
    p.add_argument("--sculpt", type=Path, default=et.DEFAULT_SCULPT)
    p.add_argument("--python", default=os.environ.get("SCULPT_BENCH_PYTHON") or (str(et.BENCH_VENV_PYTHON) if et.BENCH_VENV_PYTHON.exists() else sys.executable))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--json", type=Path)
    p.add_argument("--worker", choices=["ppl", "speed"], help=argparse.SUPPRESS)
    p.add_argument("--adapter", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        path = args.files[0]
        if args.worker == "ppl":
            print(json.dumps(llama_ppl_worker(SimpleNamespace(model=path, threads=args.threads, adapter=args.adapter))))
        else:
            print(json.dumps(et.llama_worker(SimpleNamespace(model=path, prefill=512, generate=128, runs=args.runs,
                                                              threads=args.threads, llama_verbose=False))))
        return
    files = args.files or sorted((REPO_ROOT / "build" / "exports").glob("*.gguf"))
    if not files:
        raise SystemExit("no files: run benchmarks/shears_sqft_smollm2.sculpt first, or name GGUF files")
    rows, failed = [], False
    for path in files:
        print(f"{path.name} …", flush=True)
        row = {"file": path.name, **describe(path)}
        row["sculpt"] = sculpt_ppl(args, path)
        row["llama"] = run_worker(args, "ppl", path)
        row["speed"] = run_worker(args, "speed", path)
        rows.append(row)
        print("  " + json.dumps({k: row[k] for k in ("sculpt", "llama")}), flush=True)
    print(f"\nPerplexity on {TOKENS} tokens of Persuasion (windows of {WINDOW}); llama.cpp {args.threads} threads, median of {args.runs}\n")
    print(f"{'file':<26} {'arch':<6} {'MLP widths':<16} {'types':<10} {'MB':>6} {'ppl Sculpt':>11} {'ppl llama.cpp':>14} {'diff':>8} "
          f"{'prefill t/s':>12} {'gen t/s':>8} {'gen vs full':>11}")
    full = {}
    for row in rows:
        widths = row["ffn"]
        label = str(widths[0]) if len(set(widths)) == 1 else f"{min(widths)}–{max(widths)} (mean {sum(widths) / len(widths):.0f})"
        s, l, v = row["sculpt"], row["llama"], row["speed"]
        diff = (l["ppl"] / s["ppl"] - 1) if s.get("status") == "ok" and l.get("status") == "ok" else float("nan")
        if not abs(diff) <= args.tolerance:
            failed = True
        gen = v.get("generation_tokens_per_second", float("nan"))
        if max(widths) == 1536 and len(set(widths)) == 1 and row["types"] not in full:
            full[row["types"]] = gen
        ratio = gen / full[row["types"]] if row["types"] in full else float("nan")
        print(f"{row['file']:<26} {row['architecture']:<6} {label:<16} {row['types']:<10} {row['bytes'] / 1e6:>6.1f} "
              f"{s.get('ppl', float('nan')):>11.3f} {l.get('ppl', float('nan')):>14.3f} {100 * diff:>+7.2f}% "
              f"{v.get('prefill_tokens_per_second_all_logits', float('nan')):>12.0f} {gen:>8.1f} {ratio:>10.2f}×")
    # Adapters for --lora (benchmarks/lora_gguf_smollm2.sculpt): llama.cpp runs base + adapter file,
    # Sculpt the merged model it exported from the same session.
    lora_dir = REPO_ROOT / "build" / "exports-lora"
    pairs = sorted(lora_dir.glob("*-adapters.gguf")) if not args.files else []
    if pairs:
        print(f"\nAdapters through llama.cpp's LoRA loader (scale 1), against Sculpt's merged export\n")
        print(f"{'adapter file':<24} {'ppl Sculpt (merged)':>20} {'ppl llama.cpp (base + --lora)':>30} {'diff':>8}")
    for adapter in pairs:
        stem = adapter.name.replace("-adapters.gguf", "")
        base, merged = lora_dir / f"{stem}-base-f32.gguf", lora_dir / f"{stem}-merged-f32.gguf"
        s, l = sculpt_ppl(args, merged), run_worker(args, "ppl", base, adapter)
        diff = (l["ppl"] / s["ppl"] - 1) if s.get("status") == "ok" and l.get("status") == "ok" else float("nan")
        if not abs(diff) <= args.tolerance:
            failed = True
        rows.append({"file": adapter.name, "adapter": True, "sculpt": s, "llama": l})
        print(f"{adapter.name:<24} {s.get('ppl', float('nan')):>20.3f} {l.get('ppl', float('nan')):>30.3f} {100 * diff:>+7.2f}%"
              + ("" if l.get("status") == "ok" else f"  ({l.get('detail', '')[:200]})"))
    tokenizer = {row["file"]: row["llama"].get("tokenizer_matches_hf") for row in rows if not row.get("adapter")}
    print("\nllama.cpp's tokens equal the HF tokenizer's (Sculpt's):", tokenizer)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print("\nFAIL" if failed else "\nOK: every file within tolerance")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
