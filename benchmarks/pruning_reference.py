#!/usr/bin/env python3
"""Sculpt's Wanda and GPTQ against independent PyTorch implementations, on SmolLM2-135M, in one run.

* Sculpt -- the release binary's `sculpt-kernel repl`: `sparsify wanda sparsity=50%`, `sparsify
  wanda pattern=2:4` and `quantize int4 group=32 method=gptq` on the loaded model (calibration: the
  first 16 windows of 512 tokens of Emma, tokenized whole without BOS: the defaults), each written
  with `export gguf ... type=f32` (`sparsify restore` in between).
* PyTorch -- CPU float32, nothing of Sculpt called. The GGUF is dequantized and built as an
  nn.Module LLaMA (benchmarks/training_step.py: HF names, Q/K rows un-permuted; rows do not
  interact in either method, so the masks and codes compare row for row after un-permuting
  Sculpt's file the same way). The tokenizer is the GGUF's vocabulary and merges in HF
  `tokenizers` (benchmarks/task_accuracy.py).
  - Wanda as wanda/lib/prune.py runs it: forward hooks on every nn.Linear of a layer accumulate
    scaler_row (running mean of ||X_j||^2 per calibration sample), the layer runs on every
    window, then W_metric = |W| * sqrt(scaler_row); unstructured: torch.sort(stable) along each
    row and the first int(in * 0.5) zeroed; N:M: torch.topk(largest=False) in every group of M;
    then the layer's outputs are recomputed with the pruned weights for the next layer.
  - GPTQ as GPTQ's gptq.py / AutoGPTQ run it: true-sequential groups [k,v,q], [o], [up,gate],
    [down], each group's H = 2/n * sum X^T X from hooks on a fresh forward of the layer, dead
    columns zeroed, damp 0.1 * mean(diag H), H^-1 by torch.cholesky_inverse, its upper Cholesky
    factor, blocks of 128 with the in-block error feedback and the lazy trailing update;
    find_params on W[:, i:i+32] at each group start (asymmetric, xmin = min(x, 0), xmax =
    max(x, 0), scale = (xmax - xmin) / 15 rounded to half precision as GGUF stores it, zero =
    round(-xmin / scale)).
* Both pruned/quantized models are then scored by the same PyTorch forward on Persuasion: the
  first 16,385 tokens in the windows `eval ppl tokens=16384 window=512` uses (512-token windows
  overlapping by one token, each token after the first scored once).

Printed: per method, how many weights agree (the same zero/non-zero for Wanda; the same value for
GPTQ), the worst matrix, the agreement layer by layer, and the two perplexities. Wanda's masks may
differ only where two scores of a row tie to float rounding (the two sum activations in different
orders); a flipped weight changes the next block's inputs a little, so flips can multiply with
depth. GPTQ's error feedback amplifies such differences much more, so its codes are compared for
agreement and its perplexities for a relative difference. Wanda is also run a second time with
each block's inputs taken from Sculpt's pruned blocks before it, which judges every block's mask on
the same inputs. Exit 1 if any block then agrees on fewer than 99.99 % of its weights, or any
perplexity differs by more than --tolerance (default 1 %).

Usage:
    bash benchmarks/setup_bench.sh
    nice -n 19 python3 benchmarks/pruning_reference.py [--json OUT]   (about 25 min on 2 cores)
    ... --reuse --only wanda50    the reference again on Sculpt's files of the last run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import engine_throughput as et  # noqa: E402

CACHE = Path(os.environ.get("SCULPT_CACHE", Path.home() / ".cache" / "sculpt"))
WINDOWS, WINDOW_LEN = 16, 512
METHODS = {
    "wanda50": ("sparsify wanda sparsity=50%", "Wanda 50 %"),
    "wanda24": ("sparsify wanda pattern=2:4", "Wanda 2:4"),
    "gptq32": ("quantize int4 group=32 method=gptq", "GPTQ INT4 g32"),
}


def run_sculpt(args, out_dir: Path) -> dict:
    lines = ["seed 0", f"model load {args.model}", "data text austen"]
    for name, (command, _) in METHODS.items():
        lines += [command, f"export gguf {out_dir / (name + '.gguf')} type=f32", "sparsify restore"]
    started = time.time()
    proc = subprocess.run([str(args.sculpt), "repl"], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=7200)
    failed = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "Error" in line or "Failed" in line]
    if proc.returncode != 0 or failed:
        raise SystemExit(f"Sculpt failed: {failed or proc.stderr[-2000:]}")
    return {"seconds": time.time() - started}


def worker(args) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    import task_accuracy as ta
    import training_step as ts

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gguf = et.GGUFFile(args.model)
    encode, _ = ta.build_tokenizer(gguf)
    gguf.close()

    def text(novel):
        with open(CACHE / "data" / "austen" / f"{novel}.txt", encoding="utf-8", newline="") as f:
            return f.read()

    calibration = torch.tensor(encode(text("emma"))[:WINDOWS * WINDOW_LEN], dtype=torch.long).view(WINDOWS, WINDOW_LEN)
    persuasion = encode(text("persuasion"))[:16385]

    def build(path):
        sd, cfg = ts.load_weights(Path(path))
        return ts.plain_llama(sd, cfg, max_pos=1024).eval(), cfg

    def perplexity(model) -> float:
        nll, scored, start, previous_end = 0.0, 0, 0, 1
        with torch.no_grad():
            while previous_end < len(persuasion):
                end = min(start + WINDOW_LEN, len(persuasion))
                ids = torch.tensor(persuasion[start:end]).view(1, -1)
                logp = F.log_softmax(model(ids)[0].double(), dim=-1)
                for pos in range(previous_end - 1, end - 1):
                    nll -= float(logp[pos - start, persuasion[pos + 1]])
                    scored += 1
                previous_end, start = end, min(start + WINDOW_LEN, end - 1)
        return math.exp(nll / scored)

    def linears(layer):
        return {n: m for n, m in layer.named_modules() if isinstance(m, nn.Linear)}

    def layer_inputs(model):
        T = calibration.shape[1]
        return model.embed_tokens(calibration), model.cos_table[:T], model.sin_table[:T]

    @torch.no_grad()
    def wanda(model, n_of_m=None, sparsity=0.5, forced=None):
        """With `forced` (Sculpt's pruned model), each layer's mask is compared with Sculpt's and then
        Sculpt's pruned weights carry the calibration on: every layer is judged on the same inputs."""
        x, cos, sin = layer_inputs(model)
        agreement = []
        for index, layer in enumerate(model.layers):
            subset = linears(layer)
            stats = {n: [torch.zeros(m.in_features), 0] for n, m in subset.items()}

            def hook(name):
                def add_batch(module, inputs, output):
                    inp = inputs[0]
                    tmp = inp.shape[0]
                    inp = inp.reshape(-1, inp.shape[-1]).t().float()
                    s = stats[name]
                    s[0] *= s[1] / (s[1] + tmp)
                    s[1] += tmp
                    s[0] += torch.norm(inp, p=2, dim=1) ** 2 / s[1]
                return add_batch

            handles = [m.register_forward_hook(hook(n)) for n, m in subset.items()]
            for j in range(x.shape[0]):
                layer(x[j:j + 1], cos, sin)
            for h in handles:
                h.remove()
            for n, m in subset.items():
                W = m.weight.data
                metric = W.abs() * torch.sqrt(stats[n][0].reshape(1, -1))
                mask = torch.zeros_like(W, dtype=torch.bool)
                if n_of_m:
                    N, M = n_of_m
                    for ii in range(0, W.shape[1], M):
                        tmp = metric[:, ii:ii + M].float()
                        mask.scatter_(1, ii + torch.topk(tmp, N, dim=1, largest=False)[1], True)
                else:
                    order = torch.sort(metric, dim=-1, stable=True)[1]
                    mask.scatter_(1, order[:, :int(W.shape[1] * sparsity)], True)
                W[mask] = 0
            if forced is not None:
                same = total = 0
                for n, m in subset.items():
                    theirs = forced.layers[index].get_submodule(n).weight.data
                    same += int(((m.weight.data == 0) == (theirs == 0)).sum())
                    total += m.weight.numel()
                    m.weight.data.copy_(theirs)
                agreement.append(same / total)
            x = torch.cat([layer(x[j:j + 1], cos, sin) for j in range(x.shape[0])])
        return agreement

    def find_params(x, maxq=15):
        xmin = torch.minimum(x.min(1).values, torch.zeros(x.shape[0]))
        xmax = torch.maximum(x.max(1).values, torch.zeros(x.shape[0]))
        both = (xmin == 0) & (xmax == 0)
        xmin[both], xmax[both] = -1, 1
        scale = ((xmax - xmin) / maxq).half().float()
        zero = torch.round(-xmin / scale)
        return scale.unsqueeze(1), zero.unsqueeze(1)

    def quantize(x, scale, zero, maxq=15):
        q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
        return scale * (q - zero)

    @torch.no_grad()
    def fasterquant(weight, H, group=32, block=128, percdamp=0.1):
        W = weight.data.clone().float()
        H = H.clone()
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0
        damp = percdamp * torch.mean(torch.diag(H))
        H += damp * torch.eye(H.shape[0])
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        Hinv = torch.linalg.cholesky(H, upper=True)
        Q = torch.zeros_like(W)
        scale = zero = None
        for i1 in range(0, W.shape[1], block):
            i2 = min(i1 + block, W.shape[1])
            W1, Q1, Err1 = W[:, i1:i2].clone(), torch.zeros(W.shape[0], i2 - i1), torch.zeros(W.shape[0], i2 - i1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            for i in range(i2 - i1):
                w, d = W1[:, i], Hinv1[i, i]
                if (i1 + i) % group == 0:
                    scale, zero = find_params(W[:, i1 + i:i1 + i + group])
                q = quantize(w.unsqueeze(1), scale, zero).flatten()
                Q1[:, i] = q
                err = (w - q) / d
                W1[:, i:] -= err.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err
            Q[:, i1:i2] = Q1
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        weight.data.copy_(Q)

    @torch.no_grad()
    def gptq(model):
        sequential = [["self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj"], ["self_attn.o_proj"],
                      ["mlp.up_proj", "mlp.gate_proj"], ["mlp.down_proj"]]
        x, cos, sin = layer_inputs(model)
        for layer in model.layers:
            for names in sequential:
                modules = {n: layer.get_submodule(n) for n in names}
                H = {n: [torch.zeros(m.in_features, m.in_features), 0] for n, m in modules.items()}

                def hook(name):
                    def add_batch(module, inputs, output):
                        inp = inputs[0].reshape(-1, inputs[0].shape[-1]).t().float()
                        h = H[name]
                        h[0] *= h[1] / (h[1] + 1)
                        h[1] += 1
                        inp = math.sqrt(2 / h[1]) * inp
                        h[0] += inp.matmul(inp.t())
                    return add_batch

                handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
                for j in range(x.shape[0]):
                    layer(x[j:j + 1], cos, sin)
                for h in handles:
                    h.remove()
                for n, m in modules.items():
                    fasterquant(m.weight, H[n][0])
            x = torch.cat([layer(x[j:j + 1], cos, sin) for j in range(x.shape[0])])

    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "calibration_tokens": calibration.numel()}
    dense, _ = build(args.model)
    results["dense_ppl"] = perplexity(dense)
    del dense
    for name, (_, label) in METHODS.items():
        if args.only and name not in args.only.split(","):
            continue
        t0 = time.time()
        reference, _ = build(args.model)
        if name == "wanda50":
            wanda(reference)
        elif name == "wanda24":
            wanda(reference, n_of_m=(2, 4))
        else:
            gptq(reference)
        seconds = time.time() - t0
        sculpt, _ = build(args.out_dir / f"{name}.gguf")
        agree, total, worst = 0, 0, (1.0, "")
        per_layer = {}
        for (rn, rm), (sn, sm) in zip(reference.named_modules(), sculpt.named_modules()):
            if not isinstance(rm, nn.Linear) or rn == "lm_head":
                continue
            a, b = rm.weight.data, sm.weight.data
            same = ((a == 0) == (b == 0)) if name.startswith("wanda") else torch.isclose(a, b, rtol=1e-5, atol=1e-7)
            fraction = float(same.float().mean())
            agree += int(same.sum())
            total += same.numel()
            layer = int(rn.split(".")[1])
            per_layer.setdefault(layer, [0, 0])
            per_layer[layer][0] += int(same.sum())
            per_layer[layer][1] += same.numel()
            if fraction < worst[0]:
                worst = (fraction, rn)
        entry = {"label": label, "agreement": agree / total, "worst_matrix": worst[1], "worst_agreement": worst[0],
                 "per_layer_agreement": [per_layer[k][0] / per_layer[k][1] for k in sorted(per_layer)],
                 "reference_seconds": seconds, "reference_ppl": perplexity(reference), "sculpt_ppl": perplexity(sculpt)}
        if name.startswith("wanda"):
            forced_model, _ = build(args.model)
            entry["same_inputs_agreement"] = wanda(forced_model, n_of_m=(2, 4) if name == "wanda24" else None, forced=sculpt)
            del forced_model
            entry["reference_zeros"] = sum(int((m.weight == 0).sum()) for n, m in reference.named_modules() if isinstance(m, nn.Linear))
            entry["sculpt_zeros"] = sum(int((m.weight == 0).sum()) for n, m in sculpt.named_modules() if isinstance(m, nn.Linear))
        results[name] = entry
        print(json.dumps({name: entry}), file=sys.stderr, flush=True)
        del reference, sculpt
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=et.DEFAULT_MODEL)
    p.add_argument("--sculpt", type=Path, default=et.DEFAULT_SCULPT)
    p.add_argument("--python", default=os.environ.get("SCULPT_BENCH_PYTHON") or (str(et.BENCH_VENV_PYTHON) if et.BENCH_VENV_PYTHON.exists() else sys.executable))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tolerance", type=float, default=0.01, help="largest relative perplexity difference")
    p.add_argument("--out-dir", type=Path, default=REPO_ROOT / "build" / "reference")
    p.add_argument("--json", type=Path)
    p.add_argument("--only", help="comma-separated methods to check (wanda50, wanda24, gptq32)")
    p.add_argument("--reuse", action="store_true", help="reuse Sculpt's files from an earlier run in --out-dir")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(f"Sculpt: {' / '.join(c for c, _ in METHODS.values())} on {args.model.name} …", flush=True)
    sculpt = {"seconds": 0, "reused": True} if args.reuse else run_sculpt(args, args.out_dir)
    print(f"  {sculpt['seconds']:.0f} s; PyTorch reference …", flush=True)
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    proc = subprocess.run([args.python, __file__, "--worker", "--model", str(args.model), "--threads", str(args.threads),
                           "--out-dir", str(args.out_dir)] + (["--only", args.only] if args.only else []),
                          capture_output=True, text=True, env=env, timeout=7200)
    if proc.returncode != 0:
        raise SystemExit(f"PyTorch worker failed:\n{proc.stderr[-3000:]}")
    ref = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nSmolLM2-135M, calibration {ref['calibration_tokens']} tokens of Emma; perplexity on 16,384 tokens of Persuasion "
          f"(dense {ref['dense_ppl']:.3f}), torch {ref['torch']}, {ref['threads']} threads\n")
    print(f"{'method':<15} {'weights agreeing':>17} {'worst matrix':>36} {'ppl reference':>14} {'ppl Sculpt':>11} {'difference':>11}")
    failed = False
    checked = [name for name in METHODS if name in ref]
    for name in checked:
        e = ref[name]
        diff = e["sculpt_ppl"] / e["reference_ppl"] - 1
        print(f"{e['label']:<15} {100 * e['agreement']:>16.4f}% {e['worst_matrix']:>27} {100 * e['worst_agreement']:>7.3f}% "
              f"{e['reference_ppl']:>14.3f} {e['sculpt_ppl']:>11.3f} {100 * diff:>+10.3f}%")
        # Given the same inputs (Sculpt's pruned blocks before it), every block's mask must agree
        # but for float ties; run freely, the few flipped weights change later blocks' inputs.
        if abs(diff) > args.tolerance or (name.startswith("wanda") and min(e["same_inputs_agreement"]) < 0.9999):
            failed = True
    for name in checked:
        e = ref[name]
        profile = e["per_layer_agreement"]
        print(f"{e['label']}: agreement by layer " + " ".join(f"{100 * a:.3f}" for a in profile))
        if name.startswith("wanda"):
            forced = e["same_inputs_agreement"]
            print(f"{e['label']}: with the same inputs, every block agrees on ≥ {100 * min(forced):.4f} % of its weights "
                  f"(mean {100 * sum(forced) / len(forced):.4f} %)")
            print(f"{e['label']}: zeros reference {e['reference_zeros']:,}, Sculpt {e['sculpt_zeros']:,}")
    if args.json:
        args.json.write_text(json.dumps({"sculpt": sculpt, "reference": ref}, indent=1))
    print("\nFAIL" if failed else "\nOK: within tolerance")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
