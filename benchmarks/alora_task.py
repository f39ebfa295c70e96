#!/usr/bin/env python3
"""ALoRA judged where tuning can show: SmolLM2-135M on a generated Austen task, trained on the task's
train split (five novels) and judged on its test split (Persuasion), with several seeds:

* base       -- no adapters;
* LoRA r8    -- Sculpt `lora rank=8 alpha=16` + `train`;
* ALoRA      -- Sculpt `alora budget=8` (the same total rank: 8 per module);
* AdaLoRA    -- PyTorch + PEFT's AdaLoraConfig(init_r=12 -> target_r=8, lora_alpha=16), the same
                steps, batch, rows and learning rate (benchmarks/adalora_peer.py's training loop).

Every model is scored by the same code, Sculpt's `eval accuracy`: AdaLoRA's adapters are written
as PEFT LoRA adapters (each module's ranks still open, A ⊙ E as lora_A, B as lora_B, scale
lora_alpha / init_r as PEFT's SVDLinear applies it, uneven ranks in rank_pattern) and loaded with
`adapters load`. Data: `data examples TASK count=N save=FILE` writes the training examples once;
Sculpt reads them back with `data examples FILE`, AdaLoRA with the same JSONL; Sculpt's rule holds
out the last tenth for validation. Rows: answer kept, the prompt's last seq + 1 − len(answer)
tokens, loss on the answer only.

Reported per method: acc, acc_norm and (austen_lambada) greedy exact match, each run's standard
error on the test examples, the mean over seeds with the standard deviation between seeds, and
the wall time. Each run is its own process with 2 threads, one after another.

Usage (bench venv for AdaLoRA: bash benchmarks/setup_bench.sh; SKIP_LLAMA=1 is enough):
    nice -n 19 python3 benchmarks/alora_task.py [--task austen_lambada] [--seeds 0,1,2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SCULPT_CACHE", Path.home() / ".cache" / "sculpt"))
MODEL = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HF_NAMES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
            "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Sculpt runs
# ---------------------------------------------------------------------------------------------


def sculpt(args, lines: list[str], label: str) -> dict:
    """Feeds `lines` to `sculpt-kernel repl`; the output, the wall time and the accuracy row(s)."""
    start = time.perf_counter()
    done = subprocess.run([str(args.kernel), "repl"], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=args.timeout)
    seconds = time.perf_counter() - start
    out = ANSI.sub("", done.stdout + done.stderr)
    if done.returncode != 0 or re.search(r"^\w+(Error|Failed): line", out, re.M):
        raise SystemExit(f"{label}: sculpt-kernel repl failed ({done.returncode}):\n{out[-3000:]}")
    rows = accuracy_rows(out)
    if args.task not in rows:
        raise SystemExit(f"{label}: no accuracy row for {args.task} in:\n{out[-3000:]}")
    log(f"{label}: {rows[args.task]} in {seconds:.0f} s")
    return {"seconds": seconds, **rows[args.task], "output_tail": out[-4000:]}


def accuracy_rows(text: str) -> dict:
    """The last accuracy table's rows: {task: {acc, acc_se, acc_norm, acc_norm_se, greedy, greedy_se, examples}}."""
    tables = text.split("Multiple-choice accuracy")
    if len(tables) < 2:
        return {}
    header, rows = None, {}
    for line in tables[-1].splitlines():
        if line.startswith("task "):
            header = re.split(r"\s{2,}", line.strip())
            continue
        cells = re.split(r"\s{2,}", line.strip())
        if header and len(cells) == len(header) and not line.startswith("---"):
            row = dict(zip(header, cells))
            entry = {"examples": int(row["examples"].split()[0])}
            for key, column in (("acc", "acc ± s.e."), ("acc_norm", "acc_norm ± s.e."), ("greedy", "greedy ± s.e.")):
                value = row.get(column, "—")
                if "±" in value:
                    mean, se = value.replace("%", "").split("±")
                    entry[key], entry[key + "_se"] = float(mean), float(se)
            rows[row["task"]] = entry
    return rows


def common(args, seed: int) -> list[str]:
    return [f"seed {seed}", f"model load {args.model}", f"data examples {args.examples_file}"]


def judged(args) -> list[str]:
    return [f"data tasks {args.task}" + (f" limit={args.limit}" if args.limit else ""), "eval accuracy"]


# ---------------------------------------------------------------------------------------------
# AdaLoRA (PyTorch + PEFT), in the bench venv
# ---------------------------------------------------------------------------------------------


def adalora_worker(args) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    import peft
    from peft import AdaLoraConfig, get_peft_model
    from safetensors.torch import save_file
    import adalora_peer as ap
    import training_step

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    encode, context, empty_prompt, pad = ap.tokenizer_and_context(Path(args.model_path))
    train, held = ap.split(ap.load_tokenized(Path(args.examples_file), encode, empty_prompt))
    sd, cfg = training_step.load_weights(Path(args.model_path))
    vocab = cfg["vocab"]
    targets = args.targets.split(",")

    class Output:  # AdaLoraModel.forward adds the orthogonal regularization to .loss
        def __init__(self, logits, loss):
            self.logits, self.loss = logits, loss

    class CausalLM(nn.Module):
        def __init__(self, llama):
            super().__init__()
            self.model = llama

        def forward(self, input_ids, labels=None):
            logits = self.model(input_ids)
            loss = None if labels is None else F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=-100)
            return Output(logits, loss)

    model = CausalLM(training_step.plain_llama(sd, cfg, max_pos=args.seq))
    config = AdaLoraConfig(target_r=args.budget, init_r=args.init_r, lora_alpha=args.alpha, lora_dropout=0.0,
                           target_modules=[HF_NAMES[t].split(".")[-1] for t in targets], total_step=args.steps,
                           tinit=args.tinit, tfinal=args.tfinal, deltaT=args.delta_t, beta1=0.85, beta2=0.85,
                           orth_reg_weight=0.5, bias="none")
    peft_model = get_peft_model(model, config)
    ada = peft_model.base_model
    peft_model.train()
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    layers = {name.split("base_model.model.", 1)[-1]: m for name, m in peft_model.named_modules()
              if hasattr(m, "lora_E") and "default" in getattr(m, "lora_E", {})}
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    generator = torch.Generator().manual_seed(args.seed)
    phases = [int(p) for p in args.phases.split(",")]
    start = time.perf_counter()
    for step in range(args.steps):
        lr = args.lr / ap.LR * ap.learning_rate(step, "alora", phases)  # Sculpt's schedule, restarted per ALoRA phase
        for group in optimizer.param_groups:
            group["lr"] = lr
        picks = torch.randint(len(train), (args.batch,), generator=generator).tolist()
        rows = [ap.make_row(*train[i], args.seq, pad) for i in picks]
        x = torch.tensor([r[0] for r in rows])
        y = torch.tensor([[t if t >= 0 else -100 for t in r[1]] for r in rows])
        out = ada(input_ids=x, labels=y)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        ada.update_and_allocate(step)
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % 25 == 0:
            log(f"adalora seed {args.seed}: step {step + 1}/{args.steps}, loss {float(out.loss):.4f}, "
                f"{time.perf_counter() - start:.0f} s")
    train_seconds = time.perf_counter() - start

    # As PEFT LoRA adapters: each module's open ranks, A ⊙ E and B, scale alpha / init_r.
    scale = args.alpha / args.init_r
    tensors, ranks = {}, {}
    with torch.no_grad():
        for name, m in layers.items():  # model.layers.L.self_attn.q_proj
            e = m.lora_E["default"].reshape(-1)
            open_ = (e != 0).nonzero().reshape(-1)
            a, b = m.lora_A["default"] * m.lora_E["default"], m.lora_B["default"]
            if len(open_) == 0:  # PEFT has no rank 0: one rank whose B is zero adds nothing
                a_kept, b_kept = a[:1].clone(), torch.zeros_like(b[:, :1])
            else:
                a_kept, b_kept = a[open_].clone(), b[:, open_].clone()
            tensors[f"base_model.model.{name}.lora_A.weight"] = a_kept.contiguous().float()
            tensors[f"base_model.model.{name}.lora_B.weight"] = b_kept.contiguous().float()
            ranks[name] = int(a_kept.shape[0])
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "adapter_model.safetensors"))
    common_rank = statistics.mode(ranks.values())
    pattern = {k: r for k, r in ranks.items() if r != common_rank}
    (out_dir / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": common_rank, "lora_alpha": scale * common_rank,
        "rank_pattern": pattern, "alpha_pattern": {k: scale * r for k, r in pattern.items()},
        "target_modules": [HF_NAMES[t].split(".")[-1] for t in targets], "lora_dropout": 0.0, "bias": "none",
        "fan_in_fan_out": False, "use_rslora": False, "inference_mode": True}, indent=1))
    open_ranks = sum(int((m.lora_E["default"] != 0).sum()) for m in layers.values())
    return {"status": "ok", "torch": torch.__version__, "peft": peft.__version__, "numpy": np.__version__,
            "train_seconds": train_seconds, "open_ranks": open_ranks, "modules": len(layers)}


# ---------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------


def summary(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs if key in r]
    if not values:
        return "—"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    se = statistics.mean(r[key + "_se"] for r in runs if key in r)
    return f"{statistics.mean(values):.1f} % (sd {spread:.1f}; run s.e. {se:.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="austen_lambada")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--count", type=int, default=2000, help="training examples (the last tenth held out)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup-steps", type=int, default=75, help="ALoRA's first phase; the rest split over its rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--targets", default="q,k,v,up,down")
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--val-seq", type=int, default=64, help="ALoRA's scoring rows")
    parser.add_argument("--methods", default="base,lora,alora,adalora")
    parser.add_argument("--limit", type=int, help="judge on the first N test examples only (a quick check of the script)")
    parser.add_argument("--model", default="smollm2", help="what `model load` takes")
    parser.add_argument("--kernel", type=Path, default=REPO / ".build" / "release" / "sculpt-kernel")
    parser.add_argument("--python", default=os.environ.get("SCULPT_BENCH_PYTHON", str(CACHE / "bench-venv" / "bin" / "python")))
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the examples and adapters here")
    # worker mode
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--examples-file", help=argparse.SUPPRESS)
    parser.add_argument("--model-path", default=str(MODEL), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--init-r", type=int, default=12)
    parser.add_argument("--alpha", type=float, default=16)
    parser.add_argument("--tinit", type=int, default=15)
    parser.add_argument("--tfinal", type=int, default=30)
    parser.add_argument("--delta-t", type=int, default=5)
    parser.add_argument("--phases", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    round_steps = (args.steps - args.warmup_steps) // args.rounds
    args.phases = args.phases or ",".join(map(str, [args.warmup_steps] + [round_steps] * args.rounds))
    if args.worker:
        print(json.dumps(adalora_worker(args)), flush=True)
        return 0

    work = args.keep or Path(tempfile.mkdtemp(prefix="sculpt-alora-task-"))
    work.mkdir(parents=True, exist_ok=True)
    args.examples_file = str(work / f"{args.task}_train.jsonl")
    methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {"task": args.task, "seeds": seeds, "settings": {k: getattr(args, k) for k in (
        "count", "steps", "warmup_steps", "rounds", "seq", "batch", "lr", "targets", "budget", "val_seq", "init_r",
        "alpha", "tinit", "tfinal", "delta_t", "phases")}, "cpu": cpu_name(), "runs": {m: [] for m in methods}}
    subprocess.run([str(args.kernel), "repl"], input=f"data examples {args.task} count={args.count} save={args.examples_file}\n",
                   capture_output=True, text=True, check=True)
    log(f"training examples: {args.examples_file}")
    train = f"train steps={args.steps} lr={args.lr} batch={args.batch} seq={args.seq} eval_every={args.steps} val_batches=4"
    if "base" in methods:
        results["runs"]["base"].append(sculpt(args, [f"model load {args.model}"] + judged(args), "base"))
    for seed in seeds:
        if "lora" in methods:
            run = sculpt(args, common(args, seed) + [f"lora rank={args.budget} alpha=16 targets={args.targets}", train] + judged(args),
                         f"LoRA r{args.budget}, seed {seed}")
            results["runs"]["lora"].append({"seed": seed, **run})
        if "alora" in methods:
            alora = (f"alora budget={args.budget} rounds={args.rounds} warmup_steps={args.warmup_steps} round_steps={round_steps} "
                     f"targets={args.targets} lr={args.lr} batch={args.batch} seq={args.seq} val_batch=2 val_seq={args.val_seq}")
            run = sculpt(args, common(args, seed) + [alora] + judged(args), f"ALoRA budget {args.budget}, seed {seed}")
            results["runs"]["alora"].append({"seed": seed, **run})
        if "adalora" in methods:
            out = work / f"adalora_seed{seed}"
            start = time.perf_counter()
            worker = subprocess.run([args.python, __file__, "--worker", "--seed", str(seed), "--out", str(out),
                                     "--examples-file", args.examples_file, "--steps", str(args.steps), "--seq", str(args.seq),
                                     "--batch", str(args.batch), "--lr", str(args.lr), "--targets", args.targets,
                                     "--budget", str(args.budget), "--phases", args.phases,
                                     "--init-r", str(args.init_r), "--alpha", str(args.alpha), "--tinit", str(args.tinit),
                                     "--tfinal", str(args.tfinal), "--delta-t", str(args.delta_t)],
                                    capture_output=True, text=True, timeout=args.timeout)
            if worker.returncode != 0:
                raise SystemExit(f"AdaLoRA worker failed:\n{worker.stderr[-3000:]}")
            trained = json.loads(worker.stdout.strip().splitlines()[-1])
            log(f"AdaLoRA seed {seed}: trained in {time.perf_counter() - start:.0f} s, {trained['open_ranks']} ranks open")
            run = sculpt(args, [f"model load {args.model}", f"adapters load {out}"] + judged(args), f"AdaLoRA, seed {seed}")
            results["runs"]["adalora"].append({"seed": seed, "training": trained, **run})

    names = {"base": "SmolLM2, no adapters", "lora": f"LoRA r{args.budget}", "alora": f"ALoRA, budget {args.budget}",
             "adalora": f"PEFT AdaLoRA, {args.init_r} → {args.budget}"}
    print(f"\n{args.task}: trained on its train split ({args.count} examples, {args.steps} steps of {args.batch} × {args.seq}), "
          f"judged on its test split; targets {args.targets}; {results['cpu']}")
    print(f"| | runs | acc | acc_norm | greedy |\n|---|---|---|---|---|")
    for m in methods:
        runs = results["runs"][m]
        print(f"| {names[m]} | {len(runs)} | {summary(runs, 'acc')} | {summary(runs, 'acc_norm')} | {summary(runs, 'greedy')} |")
    print("\nper seed (acc):")
    for m in methods:
        print(f"  {names[m]}: " + ", ".join(f"{r.get('seed', '-')}: {r['acc']:.1f} % / greedy {r.get('greedy', float('nan')):.1f} %"
                                            f" ({r['seconds']:.0f} s)" for r in results["runs"][m]))
    if args.json:
        for runs in results["runs"].values():
            for r in runs:
                r.pop("output_tail", None)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
