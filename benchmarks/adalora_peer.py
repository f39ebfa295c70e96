#!/usr/bin/env python3
"""Sculpt's ALoRA next to PyTorch + PEFT's AdaLoRA (ALoRA's nearest shipped peer) on SmolLM2,
the same data, the same rank budget and the same number of steps, in one run, judged on BIG-bench
arithmetic: it needs BIG-bench's optional files in the cache (scripts/fetch_data.py bigbench). The
comparison on a generated task the model can do, with several seeds, is benchmarks/alora_task.py,
which imports this file's training helpers.

Each side runs in a process of its own, one after the other, with --threads (2) threads:

* Data (this process, seeded by --seed): --n (4000) arithmetic questions in BIG-bench's
  `arithmetic` format, "What is A plus|minus|times|divided by B?", operands of 1 to 3 digits (the
  digit count drawn uniformly; for division the dividend has that many digits and the quotient is
  whole), choices = the answer, 4 numeric distractors (3 near misses answer ± k·1|10|100, one far
  number two digits longer than the answer) and "banana", "house"; every input that BIG-bench's
  own arithmetic files ask (~/.cache/sculpt/tasks/arithmetic/*/task.json) is excluded, and no input
  repeats. Prompt = task_accuracy.build_prompt (BIG-bench's 0-shot layout: "\\nQ: " + question +
  "\\n  choice: " + "\\n  choice: ".join(listed) + "\\nA: ", listed =
  numpy.random.RandomState(42).permutation(sorted choices)); answer = the number as text. Written
  as JSONL {"prompt", "answer"} to a temporary file that both sides read; the last tenth is held out
  for validation (Sculpt's rule for `data examples`), the rest is trained on.
* Sculpt -- `sculpt-kernel repl` fed `seed 0`, `model load smollm2`, `data examples FILE`,
  `alora budget=8 rounds=3 warmup_steps=75 round_steps=25 targets=q,k,v,up,down lr=5e-4 batch=4
  seq=64 val_batch=2 val_seq=32`, `adapters save DIR`, `data tasks arithmetic limit=25`,
  `eval accuracy`, with `echo` markers between the commands; stdout lines are timestamped as they
  arrive, so the `alora` command's wall time is the time between the markers around it. Parsed:
  the ALoRA rounds table (validation loss after each phase, the scoring cost of each round), the
  final allocation table, and the accuracy table (the "arithmetic (mean of 20 subtasks)" row and
  every subtask's row).
* PyTorch + PEFT AdaLoRA ("adalora" worker) -- SmolLM2 from the same GGUF as training_step.py loads
  it (training_step.load_weights + plain_llama, float32), wrapped in a module that returns
  (logits, loss) so that PEFT's AdaLoraModel.forward adds AdaLoRA's orthogonal regularization, and
  peft.get_peft_model(AdaLoraConfig(target_r=8, init_r=12, lora_alpha=16, lora_dropout=0,
  target_modules=q_proj,k_proj,v_proj,up_proj,down_proj, total_step=150, tinit, tfinal, deltaT,
  beta1 = beta2 = 0.85, orth_reg_weight=0.5)). Budget: 8 × 150 modules = 1200 ranks at the end
  (ALoRA's total), from 12 × 150 = 1800 at the start. Step: a batch of 4 training examples drawn
  uniformly with replacement (torch.Generator seeded), each row made by Sculpt's rule (keep the
  answer, keep the prompt's last seq + 1 − len(answer) tokens, pad with EOS to seq 64, loss only on
  the answer tokens: mean cross-entropy over the batch's answer tokens), + orth. reg.; backward;
  clip_grad_norm_(1.0); torch.optim.AdamW(lr, betas 0.9/0.999, eps 1e-8, weight_decay 0 as
  Sculpt's AdamW); update_and_allocate(step); zero_grad. Learning rate per step: Sculpt's schedule
  (Compression/AdamW.swift LearningRateSchedule: linear warm-up, here 0 steps, then cosine to 0).
  Sculpt's `alora` trains each phase as its own `train` run, so its rate restarts: cosine over the
  75 warm-up steps, then over each round's 25; --schedule alora (default) gives AdaLoRA the same
  rate at every step, --schedule cosine one cosine over all 150. (Sculpt also starts a fresh AdamW
  in each phase; AdaLoRA keeps one optimizer, as PEFT's AdaLoRA training loop does.)
  Then: held-out loss, the adapters merged into the weights (each SVDLinear's get_delta_weight:
  B (A ⊙ E) · alpha / r_init), and arithmetic accuracy scored with task_accuracy.py's functions
  (build_model's forward over the merged weights, choice_loglikelihoods, its acc / acc_norm rules;
  BIG-bench arithmetic, 20 subtasks, first --limit (25) examples of each, 0-shot).
* PyTorch check ("check" worker, --no-check skips it) -- the same held-out loss and accuracy for the
  base model (no adapters) and for Sculpt's own ALoRA adapters as `adapters save` wrote them (PEFT
  layout, HF row order; merged as W + (lora_alpha / r) · B A per module), by the same PyTorch code:
  so both methods' held-out losses come from one implementation, and Sculpt's printed accuracy is
  checked against an independent scoring of its adapters.

Held-out loss = mean cross-entropy of the answer tokens (token-weighted) with rows made by Sculpt's
rule at seq 64: "val16" over the first 16 held-out examples (what Sculpt's `train` validates on: 4
fixed batches of 4, and what its rounds table prints), "val" over all of the held-out tenth.

Usage (about 42 min on the 2-core machine: Sculpt ~23, AdaLoRA ~10, the check ~9):
    bash benchmarks/setup_bench.sh        # bench venv: torch (CPU), peft, transformers, tokenizers, numpy
    nice -n 19 python3 benchmarks/adalora_peer.py [--json OUT] [--keep DIR] [--tinit 15 --tfinal 30 --delta-t 5]

The parent needs numpy (for the prompts' permutation) and the standard library; the workers run
under --python (default: $SCULPT_BENCH_PYTHON, else ~/.cache/sculpt/bench-venv/bin/python if it
exists, else this Python).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_throughput as et  # noqa: E402  (GGUF reader, paths, result protocol, CPU-disturbance helpers)
import task_accuracy as ta  # noqa: E402  (tasks, prompts, tokenizer, scoring forward and rules)

BUDGET, INIT_R, ALPHA, LR, BATCH, SEQ = 8, 12, 16, 5e-4, 4, 64
SCULPT_TARGETS = ("q", "k", "v", "up", "down")
HF_TARGETS = ("q_proj", "k_proj", "v_proj", "up_proj", "down_proj")
PROJECTION = dict(zip(HF_TARGETS, SCULPT_TARGETS))
VAL_BATCH, VAL_SEQ = 2, 32  # ALoRA's fixed scoring batch
VAL16 = 16  # Sculpt's `train` validation: 4 fixed batches of 4 held-out examples
MARK = "ADALORA-PEER-MARK"


# ---------------------------------------------------------------------------------------------
# Data (parent)
# ---------------------------------------------------------------------------------------------


def bigbench_inputs() -> tuple[set, int]:
    """Every input string of the cached BIG-bench arithmetic files, and how many files there are."""
    files = sorted(glob.glob(str(ta.TASKS_DIR / "arithmetic" / "*" / "task.json")))
    inputs = set()
    for f in files:
        for ex in json.loads(Path(f).read_text(encoding="utf-8")).get("examples", []):
            if isinstance(ex, dict) and isinstance(ex.get("input"), str):
                inputs.add(ex["input"])
    return inputs, len(files)


def generate_examples(n: int, seed: int, excluded: set) -> tuple[list[dict], dict]:
    """n arithmetic prompt/answer pairs in BIG-bench's format, none of whose inputs is in `excluded`."""
    rng = random.Random(seed)
    task = {**ta.PROMPT_DEFAULTS}  # BIG-bench arithmetic's files override none of the defaults

    def number(digits: int) -> int:
        low = 0 if digits == 1 else 10 ** (digits - 1)
        return rng.randrange(low, 10 ** digits)

    out, seen = [], set()
    stats = {"skipped_in_bigbench": 0, "skipped_repeated": 0, "operations": {}, "digits": {}}
    while len(out) < n:
        digits, op = rng.randint(1, 3), rng.randrange(4)
        if op == 3:  # division: a dividend of `digits` digits, a whole quotient
            low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10 ** digits - 1
            b = max(1, number(rng.randint(1, digits)))
            q_low, q_high = -(-low // b), high // b
            if q_low > q_high:
                continue
            answer = rng.randint(q_low, q_high)
            a, word = b * answer, "divided by"
        else:
            a, b = number(digits), number(digits)
            word, answer = [("plus", a + b), ("minus", a - b), ("times", a * b)][op]
        question = f"What is {a} {word} {b}?"
        if question in excluded:
            stats["skipped_in_bigbench"] += 1
            continue
        if question in seen:
            stats["skipped_repeated"] += 1
            continue
        seen.add(question)
        choices = {str(answer)}
        while len(choices) < 5:  # 3 near misses, then one far number
            if len(choices) < 4:
                candidate = answer + rng.choice([1, 10, 100, -1, -10, -100]) * rng.randint(1, 9)
            else:
                candidate = number(len(str(abs(answer))) + 2)
            choices.add(str(candidate))
        listed = sorted(choices | {"banana", "house"})
        prompt = ta.build_prompt(task, {"input": question, "choices": listed})
        out.append({"prompt": prompt, "answer": str(answer)})
        stats["operations"][word] = stats["operations"].get(word, 0) + 1
        stats["digits"][str(digits)] = stats["digits"].get(str(digits), 0) + 1
    return out, stats


# ---------------------------------------------------------------------------------------------
# Workers (torch)
# ---------------------------------------------------------------------------------------------


def load_tokenized(path: Path, encode, empty_prompt: list) -> list[tuple[list, list]]:
    pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(encode(p["prompt"]) or list(empty_prompt), encode(p["answer"])) for p in pairs]


def split(tokenized: list) -> tuple[list, list]:
    """Sculpt's split: the last tenth (at least one) held out."""
    held = max(1, len(tokenized) // 10)
    return tokenized[:-held], tokenized[-held:]


def make_row(prompt: list, answer: list, seq: int, pad: int) -> tuple[list, list]:
    """Sculpt's InstructionExamples.row: keep the answer, the prompt's last seq + 1 − len(answer)
    tokens, pad to seq; target i = token i + 1 where that token is the answer's, else -1."""
    answer = answer[:seq]
    keep = max(1, seq + 1 - len(answer))
    full = prompt[-keep:] + answer
    prompt_count = len(full) - len(answer)
    tokens = full[:seq] + [pad] * (seq - min(seq, len(full)))
    targets = [-1] * seq
    for i in range(len(full) - 1):
        if i + 1 >= prompt_count:
            targets[i] = full[i + 1]
    return tokens, targets


def heldout_loss(log_probs_of, rows: list, batch: int = BATCH) -> tuple[float, int]:
    """Token-weighted mean answer-token cross-entropy; log_probs_of(ids [B, T]) -> [B, T, V] float64."""
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            ids = torch.tensor([r[0] for r in chunk])
            targets = torch.tensor([r[1] for r in chunk])
            lp = log_probs_of(ids)
            mask = targets >= 0
            picked = lp.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
            total += float(-picked[mask].sum())
            count += int(mask.sum())
    return total / max(1, count), count


def scoring_model(sd: dict, cfg: dict, context: int):
    """task_accuracy.build_model's forward and log_probs over these weights (not the file's)."""
    import training_step

    original = training_step.load_weights
    training_step.load_weights = lambda _path: (sd, cfg)
    try:
        forward, log_probs, _ = ta.build_model(Path("<merged weights>"), context)
    finally:
        training_step.load_weights = original
    return forward, log_probs


def score_arithmetic(forward, log_probs, context: int, encode, empty_prompt: list, limit: int) -> dict:
    """BIG-bench arithmetic accuracy with task_accuracy.py's prompts, scoring and acc rules."""
    import torch

    tasks = []
    start = time.perf_counter()
    with torch.inference_mode():
        for task in ta.load_tasks("arithmetic", limit):
            t0 = time.perf_counter()
            acc, acc_norm = [], []
            for ex in task["examples"]:
                prompt = encode(ta.build_prompt(task, ex)) or empty_prompt
                choice_ids = [encode(c) for c in ex["choices"]]
                lls = ta.choice_loglikelihoods(forward, log_probs, context, prompt, choice_ids)
                best = max(range(len(lls)), key=lambda i: (lls[i], -i))
                norm = [ll / max(1, len(c)) for ll, c in zip(lls, ex["choices"])]
                best_norm = max(range(len(norm)), key=lambda i: (norm[i], -i))
                acc.append(ex["scores"][best])
                acc_norm.append(ex["scores"][best_norm])
            n = len(acc)
            tasks.append({"task": task["name"], "examples": n, "acc": 100 * sum(acc) / n, "acc_norm": 100 * sum(acc_norm) / n,
                          "acc_count": sum(acc), "acc_norm_count": sum(acc_norm), "seconds": time.perf_counter() - t0})
    return {"tasks": tasks, "subtasks": len(tasks), "examples": sum(t["examples"] for t in tasks),
            "acc": sum(t["acc"] for t in tasks) / len(tasks), "acc_norm": sum(t["acc_norm"] for t in tasks) / len(tasks),
            "seconds": time.perf_counter() - start}


def tokenizer_and_context(model_path: Path):
    gguf = et.GGUFFile(model_path)
    encode, _ = ta.build_tokenizer(gguf)
    m = gguf.metadata
    bos, eos = m.get("tokenizer.ggml.bos_token_id"), m.get("tokenizer.ggml.eos_token_id")
    context = int(m.get(f"{m.get('general.architecture', 'llama')}.context_length", 8192))
    gguf.close()
    return encode, context, ([bos] if bos is not None else [eos]), (eos if eos is not None else 0)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def learning_rate(step: int, schedule: str, phases: list[int]) -> float:
    """Sculpt's LearningRateSchedule (warm-up 0: cosine from the peak to 0) over each phase."""
    if schedule == "cosine":
        phases = [sum(phases)]
    start = 0
    for length in phases:
        if step < start + length:
            t = step - start
            return LR * 0.5 * (1 + math.cos(math.pi * min(1.0, t / max(1, length))))
        start += length
    return 0.0


def adalora_worker(args) -> dict:
    try:
        import numpy as np
        import torch
        import torch.nn.functional as F
        from torch import nn
        import peft
        from peft import AdaLoraConfig, get_peft_model
        import training_step
    except ImportError as error:
        return {"status": "not installed", "detail": f"{error} (bash benchmarks/setup_bench.sh installs it)"}
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    load_start = time.perf_counter()
    encode, context, empty_prompt, pad = tokenizer_and_context(args.model)
    train, held = split(load_tokenized(args.data, encode, empty_prompt))
    held_rows = [make_row(p, a, SEQ, pad) for p, a in held]
    sd, cfg = training_step.load_weights(args.model)
    V = cfg["vocab"]

    class Output:  # what AdaLoraModel.forward looks for: .loss (a tensor) gets the orthogonal regularization added
        def __init__(self, logits, loss):
            self.logits, self.loss = logits, loss

    class CausalLM(nn.Module):
        """plain_llama under `model` (so PEFT's module names are HF's: model.layers.i.self_attn.q_proj),
        with the answer-token loss when labels are given."""

        def __init__(self, llama):
            super().__init__()
            self.model = llama

        def forward(self, input_ids, labels=None):
            logits = self.model(input_ids)
            loss = None
            if labels is not None:
                loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
                self.last_ce = float(loss.detach())
            return Output(logits, loss)

    model = CausalLM(training_step.plain_llama(sd, cfg, max_pos=SEQ))
    config = AdaLoraConfig(target_r=BUDGET, init_r=INIT_R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=list(HF_TARGETS),
                           total_step=args.total_steps, tinit=args.tinit, tfinal=args.tfinal, deltaT=args.delta_t,
                           beta1=0.85, beta2=0.85, orth_reg_weight=args.orth_reg, bias="none")
    peft_model = get_peft_model(model, config)
    ada = peft_model.base_model  # AdaLoraModel: forward adds the orthogonal regularization; update_and_allocate
    peft_model.train()
    load_seconds = time.perf_counter() - load_start

    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    svd_layers = {name.split("base_model.model.", 1)[-1]: module for name, module in peft_model.named_modules()
                  if hasattr(module, "lora_E") and "default" in getattr(module, "lora_E", {})}
    allocator = ada.rankallocator

    def active_ranks() -> dict:
        return {name: int((m.lora_E["default"] != 0).sum()) for name, m in svd_layers.items()}

    result = {"status": "ok", "torch_version": torch.__version__, "peft_version": peft.__version__, "numpy_version": np.__version__,
              "threads": torch.get_num_threads(), "load_seconds": load_seconds,
              "train_examples": len(train), "heldout_examples": len(held),
              "config": {"target_r": BUDGET, "init_r": INIT_R, "lora_alpha": ALPHA, "targets": HF_TARGETS,
                         "total_step": args.total_steps, "tinit": args.tinit, "tfinal": args.tfinal, "deltaT": args.delta_t,
                         "beta1": 0.85, "beta2": 0.85, "orth_reg_weight": args.orth_reg, "schedule": args.schedule,
                         "phases": args.phases, "lr": LR, "batch": BATCH, "seq": SEQ, "clip": 1.0, "weight_decay": 0.0},
              "modules": len(svd_layers), "initial_budget": allocator.init_bgt, "target_budget": allocator.target_bgt,
              "trainable_parameters_stored": sum(p.numel() for p in trainable)}
    # In and out features per module, for the parameters the ranks in use hold: r (in + out + 1).
    shapes = {name: (m.in_features, m.out_features) for name, m in svd_layers.items()}

    optimizer = torch.optim.AdamW(trainable, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    generator = torch.Generator().manual_seed(args.seed)
    steps = []
    log(f"adalora: {len(svd_layers)} modules, budget {allocator.init_bgt} -> {allocator.target_bgt} ranks, "
        f"{result['trainable_parameters_stored']:,} trainable parameters stored; {args.total_steps} steps")
    train_start = time.perf_counter()
    for step in range(args.total_steps):
        t0 = time.perf_counter()
        lr = learning_rate(step, args.schedule, args.phases)
        for group in optimizer.param_groups:
            group["lr"] = lr
        picks = torch.randint(len(train), (BATCH,), generator=generator).tolist()
        rows = [make_row(*train[i], SEQ, pad) for i in picks]
        x = torch.tensor([r[0] for r in rows])
        y = torch.tensor([[t if t >= 0 else -100 for t in r[1]] for r in rows])
        out = ada(input_ids=x, labels=y)  # AdaLoraModel.forward: CE + orth_reg_weight * orthogonal regularization
        out.loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(trainable, 1.0))
        optimizer.step()
        ada.update_and_allocate(step)
        optimizer.zero_grad(set_to_none=True)
        budget, masking = allocator.budget_schedule(step)
        entry = {"step": step + 1, "ce": model.last_ce, "loss": float(out.loss.detach()), "lr": lr, "grad_norm": norm,
                 "budget": budget, "seconds": time.perf_counter() - t0}
        if masking or step + 1 == args.total_steps or step == args.total_steps - args.tfinal:
            entry["active_ranks"] = sum(active_ranks().values())
        steps.append(entry)
        if (step + 1) % 10 == 0 or step == 0 or step + 1 == args.total_steps:
            ranks = sum(active_ranks().values())
            log(f"adalora: step {step + 1}/{args.total_steps}  ce {entry['ce']:.4f}  loss+orth {entry['loss']:.4f}  "
                f"lr {lr:.2e}  |g| {norm:.3f}  budget {budget}  ranks in use {ranks}  "
                f"{time.perf_counter() - train_start:.0f} s")
    train_seconds = time.perf_counter() - train_start
    peft_model.eval()

    ranks = active_ranks()
    pattern = peft_model.peft_config["default"].rank_pattern or {}
    by_projection = {p: 0 for p in SCULPT_TARGETS}
    layers = cfg["layers"]
    grid = [[0] * len(SCULPT_TARGETS) for _ in range(layers)]
    for name, r in ranks.items():
        match = re.search(r"layers\.(\d+)\.\w+\.(\w+_proj)$", name)
        proj = PROJECTION[match.group(2)]
        by_projection[proj] += r
        grid[int(match.group(1))][SCULPT_TARGETS.index(proj)] = r
    result.update(
        train_seconds=train_seconds, seconds_per_step=train_seconds / args.total_steps,
        step_seconds=[round(s["seconds"], 4) for s in steps], steps=steps,
        final_rank=sum(ranks.values()), final_rank_pattern_true=sum(sum(v) for v in pattern.values()) if pattern else None,
        ranks_by_projection=by_projection, ranks_by_layer=grid,
        modules_without_rank=sum(1 for r in ranks.values() if r == 0),
        trainable_parameters_in_use=sum(r * (shapes[n][0] + shapes[n][1] + 1) for n, r in ranks.items()),
        max_resident_mb_training=et.vm_hwm_mb())
    log(f"adalora: trained in {train_seconds:.0f} s; {result['final_rank']} ranks in use "
        f"({', '.join(f'{p} {r}' for p, r in by_projection.items())})")

    # Held-out loss with the adapters as trained (PEFT's forward), then merged into the weights.
    def peft_log_probs(ids):
        return torch.log_softmax(peft_model(input_ids=ids).logits.double(), dim=-1)

    t0 = time.perf_counter()
    result["val16_peft_forward"], _ = heldout_loss(peft_log_probs, held_rows[:VAL16])
    with torch.no_grad():
        merged = dict(sd)
        for name, module in svd_layers.items():
            merged[name + ".weight"] = sd[name + ".weight"] + module.get_delta_weight("default")
    forward, log_probs = scoring_model(merged, cfg, context)

    def merged_log_probs(ids):
        return log_probs(forward(ids)[0])

    result["val16"], result["val16_tokens"] = heldout_loss(merged_log_probs, held_rows[:VAL16])
    result["val"], result["val_tokens"] = heldout_loss(merged_log_probs, held_rows)
    result["val_seconds"] = time.perf_counter() - t0
    log(f"adalora: held-out loss {result['val']:.4f} ({len(held_rows)} examples), first {VAL16}: {result['val16']:.4f} "
        f"(PEFT's unmerged forward: {result['val16_peft_forward']:.4f})")
    result["accuracy"] = score_arithmetic(forward, log_probs, context, encode, empty_prompt, args.limit)
    log(f"adalora: arithmetic acc {result['accuracy']['acc']:.2f}%, acc_norm {result['accuracy']['acc_norm']:.2f}% "
        f"in {result['accuracy']['seconds']:.0f} s")
    result["max_resident_mb"] = et.vm_hwm_mb()
    return result


def check_worker(args) -> dict:
    """Held-out loss and arithmetic accuracy of the base model and of Sculpt's saved ALoRA adapters."""
    try:
        import numpy as np
        import torch
        import training_step
        from safetensors.torch import load_file
    except ImportError as error:
        return {"status": "not installed", "detail": f"{error} (bash benchmarks/setup_bench.sh installs it)"}
    torch.set_num_threads(args.threads)
    encode, context, empty_prompt, pad = tokenizer_and_context(args.model)
    _, held = split(load_tokenized(args.data, encode, empty_prompt))
    held_rows = [make_row(p, a, SEQ, pad) for p, a in held]
    sd, cfg = training_step.load_weights(args.model)
    result = {"status": "ok", "torch_version": torch.__version__, "numpy_version": np.__version__, "threads": torch.get_num_threads()}

    def measure(label: str, weights: dict) -> dict:
        forward, log_probs = scoring_model(weights, cfg, context)

        def lp(ids):
            return log_probs(forward(ids)[0])

        out = {}
        out["val16"], _ = heldout_loss(lp, held_rows[:VAL16])
        out["val"], out["val_tokens"] = heldout_loss(lp, held_rows)
        out["accuracy"] = score_arithmetic(forward, log_probs, context, encode, empty_prompt, args.limit)
        log(f"check: {label}: held-out loss {out['val']:.4f} (first {VAL16}: {out['val16']:.4f}); arithmetic acc "
            f"{out['accuracy']['acc']:.2f}%, acc_norm {out['accuracy']['acc_norm']:.2f}%")
        return out

    if not args.skip_base:
        result["base"] = measure("base model", sd)
    adapters = Path(args.sculpt_adapters) if args.sculpt_adapters else None
    if adapters and (adapters / "adapter_model.safetensors").exists():
        config = json.loads((adapters / "adapter_config.json").read_text())
        tensors = load_file(str(adapters / "adapter_model.safetensors"))
        merged, ranks, scales = dict(sd), {}, set()
        with torch.no_grad():
            for name in sorted(tensors):
                if not name.endswith(".lora_A.weight"):
                    continue
                module = name[len("base_model.model."):-len(".lora_A.weight")]  # model.layers.L.self_attn.q_proj
                a, b = tensors[name].float(), tensors[name.replace("lora_A", "lora_B")].float()
                r = config.get("rank_pattern", {}).get(module, config["r"])
                alpha = config.get("alpha_pattern", {}).get(module, config["lora_alpha"])
                scale = alpha / r
                scales.add(round(scale, 6))
                if a.shape[0] != r:
                    raise ValueError(f"{module}: lora_A has {a.shape[0]} rows, the config gives rank {r}")
                merged[module + ".weight"] = sd[module + ".weight"] + scale * (b @ a)
                # A module with no rank open is saved as rank 1 with a zero B (it adds nothing).
                ranks[module] = 0 if (r == 1 and not bool(b.any())) else r
        result["sculpt_adapters"] = {"modules": len(ranks), "total_rank": sum(ranks.values()), "scales": sorted(scales),
                                     "parameters_in_use": sum(int(tensors[f"base_model.model.{m}.lora_A.weight"].numel()
                                                                  + tensors[f"base_model.model.{m}.lora_B.weight"].numel())
                                                              for m, r in ranks.items() if r > 0),
                                     **measure("Sculpt's ALoRA adapters", merged)}
    elif adapters:
        result["sculpt_adapters"] = {"status": f"no adapters in {adapters}"}
    result["max_resident_mb"] = et.vm_hwm_mb()
    return result


# ---------------------------------------------------------------------------------------------
# Parent: processes
# ---------------------------------------------------------------------------------------------


def run_streaming(cmd: list[str], stdin_text: str | None, timeout: float, env: dict | None = None,
                  relay: str | None = None, watch=None) -> dict:
    """Runs cmd; every stdout and stderr line is timestamped (seconds since the start) as it
    arrives; stderr lines are relayed to our stdout with the prefix `relay` when given, and
    watch(seconds, line) sees every stdout line as it arrives."""
    start = time.perf_counter()
    busy_before = et.cpu_busy_seconds()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as error:
        return {"returncode": None, "stdout_lines": [], "stderr_lines": [], "detail": str(error), "wall_seconds": 0.0}
    lines = {"stdout": [], "stderr": []}

    def reader(stream, key):
        for raw in iter(stream.readline, b""):
            text = ta.ANSI.sub("", raw.decode(errors="replace").rstrip("\n"))
            lines[key].append((time.perf_counter() - start, text))
            if relay is not None and key == "stderr":
                print(f"    {relay}{text}", flush=True)
            if watch is not None and key == "stdout":
                watch(lines[key][-1][0], text)
        stream.close()

    threads = [threading.Thread(target=reader, args=(proc.stdout, "stdout"), daemon=True),
               threading.Thread(target=reader, args=(proc.stderr, "stderr"), daemon=True)]
    for t in threads:
        t.start()
    if stdin_text is not None:
        proc.stdin.write(stdin_text.encode("utf-8"))
        proc.stdin.close()
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - start > timeout:
            proc.kill()
            timed_out = True
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join(timeout=10)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0.0, (et.cpu_busy_seconds() - busy_before - cpu) / max(wall, 1e-9))
    return {"returncode": proc.returncode, "timed_out": timed_out, "stdout_lines": lines["stdout"],
            "stderr_lines": lines["stderr"], "wall_seconds": wall, "cpu_seconds": cpu,
            "ru_maxrss_mb": usage.ru_maxrss / 1024, "others_cpu_cores_during_run": others}


ROUND = re.compile(r"^(warm-up|\d+)\s+([\d.]+|—)\s+(.*)$")
MEAN_ROW = re.compile(r"^arithmetic \(mean of (\d+) subtasks\)\s+(\d+)\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)\s*$")


def run_sculpt(args, data_path: Path, adapters_dir: Path) -> dict:
    binary = Path(args.sculpt_kernel)
    if not binary.exists():
        return {"status": "not built", "detail": f"{binary} does not exist"}
    alora = (f"alora budget={BUDGET} rounds={args.rounds} warmup_steps={args.warmup_steps} round_steps={args.round_steps} "
             f"targets={','.join(SCULPT_TARGETS)} lr={LR:g} batch={BATCH} seq={SEQ} val_batch={VAL_BATCH} val_seq={VAL_SEQ}")
    commands = [("seed 0", None), (args.sculpt_model_command, "model"), (f"data examples {data_path}", "data"),
                (alora, "alora"), (f"adapters save {adapters_dir}", "saved"),
                (f"data tasks arithmetic limit={args.limit}", "tasks"), ("eval accuracy", "eval")]
    script = "echo " + MARK + " start\n" + "".join(c + "\n" + (f"echo {MARK} {m}\n" if m else "") for c, m in commands)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads))
    def progress(seconds: float, line: str) -> None:  # each command as it finishes
        if line.startswith(MARK + " ") and not line.endswith(" start"):
            print(f"    sculpt: `{line.split()[1]}` done at {seconds:.0f} s", flush=True)

    proc = run_streaming([str(binary), "repl"], script, args.timeout, env=env, watch=progress)
    out = proc["stdout_lines"]
    marks = {}
    for t, line in out:
        if line.startswith(MARK + " "):
            marks[line.split()[1]] = t
    text = [line for _, line in out]
    result = {"command": [str(binary), "repl"], "stdin": script, "wall_seconds": proc["wall_seconds"],
              "cpu_seconds": proc["cpu_seconds"], "max_resident_mb": proc["ru_maxrss_mb"],
              "others_cpu_cores_during_run": proc["others_cpu_cores_during_run"], "returncode": proc["returncode"],
              "binary_modified": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(binary.stat().st_mtime)),
              "marks": marks, "alora_command": alora}
    phases = [("model", "start"), ("data", "model"), ("alora", "data"), ("saved", "alora"), ("tasks", "saved"), ("eval", "tasks")]
    result["phase_seconds"] = {m: marks[m] - marks[prev] for m, prev in phases if m in marks and prev in marks}

    # The ALoRA rounds table.
    rounds = []
    for i, line in enumerate(text):
        if line.strip() == "ALoRA rounds":
            rounds = []
            for row in text[i + 3:]:
                m = ROUND.match(row.strip())
                if not m:
                    break
                entry = {"round": m.group(1), "validation_loss": None if m.group(2) == "—" else float(m.group(2))}
                if c := re.search(r"(\d+) passes in ([\d.]+) s", row):
                    entry.update(passes=int(c.group(1)), scoring_seconds=float(c.group(2)))
                if c := re.search(r"moved (\d+)", row):
                    entry["moved"] = int(c.group(1))
                rounds.append(entry)
    result["rounds"] = rounds
    done = [float(m.group(1)) for line in text if (m := re.match(r"^done in ([\d.]+) s$", line.strip()))]
    result["alora_reported_seconds"] = done[-1] if done else None
    # The final allocation: "layer q k v up down", then one row per layer.
    allocation = None
    for i, line in enumerate(text):
        if line.startswith("Final ALoRA allocation"):
            header = text[i + 1].split()
            grid = []
            for row in text[i + 2:]:
                cells = row.split()
                if len(cells) != len(header) or not all(c.isdigit() for c in cells):
                    break
                grid.append([int(c) for c in cells[1:]])
            allocation = {"columns": header[1:], "grid": grid}
    if allocation:
        result["allocation"] = allocation
        result["final_rank"] = sum(map(sum, allocation["grid"]))
        result["ranks_by_projection"] = {c: sum(r[j] for r in allocation["grid"]) for j, c in enumerate(allocation["columns"])}
    # The accuracy table after the eval marker's predecessor.
    tasks, mean = {}, None
    for line in text:
        if m := ta.ROW.match(line.strip()):
            name, n, acc, acc_norm, chance, seconds = m.groups()
            if name.startswith("arithmetic:"):
                tasks[name] = {"examples": int(n), "acc": float(acc), "acc_norm": float(acc_norm),
                               "chance": float(chance), "seconds": float(seconds)}
        elif m := MEAN_ROW.match(line.strip()):
            mean = {"subtasks": int(m.group(1)), "examples": int(m.group(2)), "acc": float(m.group(3)),
                    "acc_norm": float(m.group(4)), "chance": float(m.group(5)), "seconds": float(m.group(6))}
    result["accuracy"] = {"mean_row": mean, "tasks": tasks}
    errors = [line for _, line in proc["stderr_lines"] if line.strip()]
    if errors:
        result["stderr"] = "\n".join(errors[-20:])
    missing = [m for _, m in commands if m and m not in marks]
    if mean is None or "alora" not in marks or not rounds:
        result.update(status="error", detail=(result.get("stderr") or "\n".join(text[-20:])) + f"\n(markers missing: {missing})")
    else:
        result["status"] = "ok"
    result["stdout"] = "\n".join(text)
    return result


def run_worker(kind: str, args, data_path: Path, adapters_dir: Path | None) -> dict:
    cmd = [args.python, str(Path(__file__).resolve()), "--worker", kind, "--model", str(args.model), "--data", str(data_path),
           "--threads", str(args.threads), "--limit", str(args.limit), "--seed", str(args.seed),
           "--warmup-steps", str(args.warmup_steps), "--round-steps", str(args.round_steps), "--rounds", str(args.rounds),
           "--tinit", str(args.tinit), "--tfinal", str(args.tfinal), "--delta-t", str(args.delta_t),
           "--orth-reg", str(args.orth_reg), "--schedule", args.schedule]
    if adapters_dir is not None:
        cmd += ["--sculpt-adapters", str(adapters_dir)]
    if args.skip_base:
        cmd += ["--skip-base"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = run_streaming(cmd, None, args.timeout, env=env, relay="")
    found = [line for _, line in proc["stdout_lines"] if line.startswith(et.RESULT_PREFIX)]
    if not found:
        return {"status": "error", "command": cmd, "returncode": proc["returncode"], "timed_out": proc.get("timed_out"),
                "detail": "\n".join(line for _, line in proc["stderr_lines"][-20:]),
                "others_cpu_cores_during_run": proc.get("others_cpu_cores_during_run")}
    result = json.loads(found[-1][len(et.RESULT_PREFIX):])
    result.update(command=cmd, wall_seconds=proc["wall_seconds"], cpu_seconds=proc["cpu_seconds"],
                  ru_maxrss_mb=proc["ru_maxrss_mb"], others_cpu_cores_during_run=proc["others_cpu_cores_during_run"])
    return result


# ---------------------------------------------------------------------------------------------
# Parent: the table
# ---------------------------------------------------------------------------------------------


def module_shapes(cfg: dict) -> dict:
    """(in, out) features of each adapted projection."""
    d, hd = cfg["dim"], cfg["head_dim"]
    return {"q": (d, cfg["heads"] * hd), "k": (d, cfg["kv_heads"] * hd), "v": (d, cfg["kv_heads"] * hd),
            "up": (d, cfg["ffn_dim"]), "down": (cfg["ffn_dim"], d)}


def fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(args, cfg: dict, sculpt: dict, ada: dict, check: dict, total_steps: int) -> tuple[str, list[dict]]:
    shapes = module_shapes(cfg)
    layers = cfg["layers"]
    rows, records = [], []
    base = check.get("base") if check.get("status") == "ok" else None
    sa = check.get("sculpt_adapters") if check.get("status") == "ok" else None
    if base:
        records.append({"method": "base model (no adapters)", "val": base["val"], "val16": base["val16"],
                        "acc": base["accuracy"]["acc"], "acc_norm": base["accuracy"]["acc_norm"], "acc_source": "PyTorch"})
    if sculpt.get("status") == "ok":
        grid = sculpt.get("allocation", {}).get("grid")
        cols = sculpt.get("allocation", {}).get("columns", [])
        in_use = sum(r * sum(shapes[c]) for row in grid for r, c in zip(row, cols)) if grid else None
        stored = 2 * BUDGET * layers * sum(sum(shapes[p]) for p in SCULPT_TARGETS)  # capacity 2 x budget per module
        scoring = sum(r.get("scoring_seconds", 0) for r in sculpt["rounds"])
        seconds = sculpt["phase_seconds"].get("alora")
        last = next((r["validation_loss"] for r in reversed(sculpt["rounds"]) if r["validation_loss"] is not None), None)
        mean = sculpt["accuracy"]["mean_row"]
        records.append({"method": "Sculpt ALoRA", "params_in_use": in_use, "params_stored": stored, "final_rank": sculpt.get("final_rank"),
                        "val16_own": last, "val16": sa.get("val16") if sa else None, "val": sa.get("val") if sa else None,
                        "acc": mean["acc"], "acc_norm": mean["acc_norm"], "acc_source": "Sculpt",
                        "acc_pytorch": sa["accuracy"]["acc"] if sa and "accuracy" in sa else None,
                        "acc_norm_pytorch": sa["accuracy"]["acc_norm"] if sa and "accuracy" in sa else None,
                        "train_seconds": seconds, "scoring_seconds": scoring,
                        "seconds_per_step": seconds / total_steps if seconds else None,
                        "seconds_per_step_without_scoring": (seconds - scoring) / total_steps if seconds else None,
                        "others_cores": sculpt.get("others_cpu_cores_during_run")})
    if ada.get("status") == "ok":
        records.append({"method": "PEFT AdaLoRA", "params_in_use": ada["trainable_parameters_in_use"],
                        "params_stored": ada["trainable_parameters_stored"], "final_rank": ada["final_rank"],
                        "val16": ada["val16"], "val": ada["val"], "acc": ada["accuracy"]["acc"], "acc_norm": ada["accuracy"]["acc_norm"],
                        "acc_source": "PyTorch", "train_seconds": ada["train_seconds"], "scoring_seconds": None,
                        "seconds_per_step": ada["seconds_per_step"], "others_cores": ada.get("others_cpu_cores_during_run")})
    header = ["method", "trainable params (in use / stored)", "final rank", "held-out loss (all)", "(first 16)",
              "arithmetic acc", "acc_norm", "training s", "s / step"]
    for r in records:
        params = f"{r['params_in_use']:,} / {r['params_stored']:,}" if r.get("params_in_use") else "—"
        first16 = fmt(r.get("val16"), ".4f")
        if r.get("val16_own") is not None:
            first16 += f" (Sculpt: {r['val16_own']:.4f})"
        acc, acc_norm = f"{r['acc']:.2f}%", f"{r['acc_norm']:.2f}%"
        if r.get("acc_pytorch") is not None:
            acc += f" (PyTorch: {r['acc_pytorch']:.2f}%)"
            acc_norm += f" (PyTorch: {r['acc_norm_pytorch']:.2f}%)"
        star = "*" if (r.get("others_cores") or 0) > et.DISTURBED_CORES else ""
        train = fmt(r.get("train_seconds"), ".0f") + star
        if r.get("scoring_seconds"):
            train += f" (scoring {r['scoring_seconds']:.0f})"
        per_step = fmt(r.get("seconds_per_step"), ".2f") + star
        if r.get("seconds_per_step_without_scoring") is not None:
            per_step += f" ({r['seconds_per_step_without_scoring']:.2f} without scoring)"
        rows.append([r["method"], params, fmt(r.get("final_rank"), "d"), fmt(r.get("val"), ".4f"), first16, acc, acc_norm, train, per_step])
    return text_table(header, rows), records


def subtask_table(sculpt: dict, ada: dict, check: dict) -> str:
    names = [t["task"] for t in ada.get("accuracy", {}).get("tasks", [])] or sorted(sculpt.get("accuracy", {}).get("tasks", {}))
    by = lambda res: {t["task"]: t for t in res.get("accuracy", {}).get("tasks", [])}  # noqa: E731
    base = by(check.get("base", {})) if check.get("status") == "ok" else {}
    sa = by(check.get("sculpt_adapters", {})) if check.get("status") == "ok" else {}
    ad = by(ada) if ada.get("status") == "ok" else {}
    st = sculpt.get("accuracy", {}).get("tasks", {})
    header = ["subtask", "n", "base acc", "ALoRA acc (Sculpt)", "(PyTorch)", "AdaLoRA acc", "base acc_norm",
              "ALoRA acc_norm (Sculpt)", "(PyTorch)", "AdaLoRA acc_norm"]
    rows = []
    for n in names:
        def cell(d, key):
            return f"{d[n][key]:.1f}" if n in d else "—"
        count = (ad.get(n) or sa.get(n) or {}).get("examples") or (st.get(n) or {}).get("examples")
        rows.append([n.replace("arithmetic:", ""), str(count or "—"), cell(base, "acc"), cell(st, "acc"), cell(sa, "acc"),
                     cell(ad, "acc"), cell(base, "acc_norm"), cell(st, "acc_norm"), cell(sa, "acc_norm"), cell(ad, "acc_norm")])
    return text_table(header, rows)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=et.DEFAULT_MODEL, help="GGUF model (default: %(default)s)")
    parser.add_argument("--sculpt-kernel", default=os.environ.get("SCULPT_KERNEL", str(et.DEFAULT_SCULPT)),
                        help="Sculpt release binary (default: $SCULPT_KERNEL or %(default)s)")
    parser.add_argument("--python", default=None, help="Python for the PyTorch workers (default: $SCULPT_BENCH_PYTHON, else "
                        f"{et.BENCH_VENV_PYTHON} if it exists, else this Python)")
    parser.add_argument("--n", type=int, default=4000, help="generated examples, the last tenth held out (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of the PyTorch side (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=25, help="BIG-bench arithmetic examples per subtask (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads of each side (default: %(default)s)")
    parser.add_argument("--warmup-steps", type=int, default=75, help="ALoRA's warm-up steps (default: %(default)s)")
    parser.add_argument("--round-steps", type=int, default=25, help="ALoRA's steps after each round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="ALoRA's rounds (default: %(default)s)")
    parser.add_argument("--tinit", type=int, default=15, help="AdaLoRA's steps before the budget starts to fall (default: %(default)s)")
    parser.add_argument("--tfinal", type=int, default=30, help="AdaLoRA's last steps at the final budget (default: %(default)s)")
    parser.add_argument("--delta-t", type=int, default=5, help="AdaLoRA's steps between two reallocations (default: %(default)s)")
    parser.add_argument("--orth-reg", type=float, default=0.5, help="AdaLoRA's orth_reg_weight (default: PEFT's %(default)s)")
    parser.add_argument("--schedule", choices=("alora", "cosine"), default="alora",
                        help="AdaLoRA's learning rate: Sculpt's ALoRA phases (cosine restarted at each round) or one cosine")
    parser.add_argument("--engines", default="sculpt,adalora,check", help="subset of sculpt,adalora,check (default: %(default)s)")
    parser.add_argument("--no-check", action="store_true", help="skip the PyTorch check of the base model and Sculpt's adapters")
    parser.add_argument("--skip-base", action="store_true", help="check Sculpt's adapters only, not the base model")
    parser.add_argument("--keep", type=Path, default=None, help="copy the data file and Sculpt's adapters to this directory")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds allowed per process (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--worker", choices=("adalora", "check"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sculpt-adapters", help=argparse.SUPPRESS)
    parser.add_argument("--sculpt-model-command", default="model load smollm2", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.phases = [args.warmup_steps] + [args.round_steps] * args.rounds
    args.total_steps = sum(args.phases)
    if not 0 <= args.tinit < args.total_steps - args.tfinal:
        parser.error(f"AdaLoRA needs tinit < total_step - tfinal ({args.tinit} < {args.total_steps} - {args.tfinal})")

    if args.worker:
        try:
            result = adalora_worker(args) if args.worker == "adalora" else check_worker(args)
        except Exception as error:  # reported to the parent
            import traceback
            traceback.print_exc()
            result = {"status": "error", "detail": f"{type(error).__name__}: {error}"}
        print(et.RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    engines = {e.strip() for e in args.engines.split(",") if e.strip()}
    if args.no_check:
        engines.discard("check")
    if args.python is None:
        args.python = os.environ.get("SCULPT_BENCH_PYTHON") or (
            str(et.BENCH_VENV_PYTHON) if et.BENCH_VENV_PYTHON.exists() else sys.executable)
    if not args.model.exists():
        print(f"model not found: {args.model} (scripts/fetch_data.py fetches it)", file=sys.stderr)
        return 2
    gguf = et.GGUFFile(args.model)
    cfg = gguf.llama_config()
    gguf.close()
    modules = cfg["layers"] * len(SCULPT_TARGETS)
    total_start = time.perf_counter()

    excluded, files = bigbench_inputs()
    if not files:
        print(f"no BIG-bench arithmetic files in {ta.TASKS_DIR / 'arithmetic'} (optional: scripts/fetch_data.py bigbench with SCULPT_BIGBENCH set)", file=sys.stderr)
        return 2
    examples, stats = generate_examples(args.n, args.seed, excluded)
    work = Path(tempfile.mkdtemp(prefix="sculpt-adalora-peer-"))
    data_path = work / "arithmetic_train.jsonl"
    data_path.write_text("".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")
    adapters_dir = work / "sculpt_alora_adapters"
    held = max(1, len(examples) // 10)

    print(f"ALoRA (Sculpt) vs AdaLoRA (PyTorch + PEFT): {args.model.name}, {modules} modules "
          f"({cfg['layers']} layers x {','.join(SCULPT_TARGETS)}), rank budget {BUDGET} x {modules} = {BUDGET * modules}; "
          f"{args.total_steps} steps of {BATCH} x {SEQ} tokens, lr {LR:g}; {args.threads} threads each, {os.cpu_count()} CPUs")
    print(f"  data: {len(examples)} generated questions (seed {args.seed}; {', '.join(f'{k} {v}' for k, v in sorted(stats['operations'].items()))}; "
          f"operand digits {', '.join(f'{k}: {v}' for k, v in sorted(stats['digits'].items()))}), "
          f"{len(examples) - held} trained on, the last {held} held out; {stats['skipped_in_bigbench']} drawn questions skipped "
          f"as BIG-bench asks them ({len(excluded)} inputs in {files} files), {stats['skipped_repeated']} as repeats -> {data_path}")
    print(f"  first example: {json.dumps(examples[0])}")
    print(f"  Sculpt ALoRA: warm-up {args.warmup_steps} steps, {args.rounds} rounds of scoring ({VAL_BATCH} x {VAL_SEQ} held-out tokens), "
          f"moving {len(SCULPT_TARGETS)} ranks, then {args.round_steps} steps; capacity {2 * BUDGET}, alpha {2 * BUDGET} (scale {2 * BUDGET / BUDGET:g})")
    print(f"  PEFT AdaLoRA: init_r {INIT_R} -> target_r {BUDGET} ({INIT_R * modules} -> {BUDGET * modules} ranks), lora_alpha {ALPHA} "
          f"(scale {ALPHA}/{INIT_R}), total_step {args.total_steps}, tinit {args.tinit}, tfinal {args.tfinal}, deltaT {args.delta_t} "
          f"(budget falls cubically over steps {args.tinit + 1}-{args.total_steps - args.tfinal}, fixed at step "
          f"{args.total_steps - args.tfinal}), orth_reg_weight {args.orth_reg}; lr schedule: "
          + ("Sculpt's ALoRA phases, cosine from the peak over " + " + ".join(map(str, args.phases)) + " steps"
             if args.schedule == "alora" else f"one cosine over {args.total_steps} steps"))
    print(f"  workers' Python: {args.python}")

    results = {}
    if "sculpt" in engines:
        print("  running Sculpt ...", flush=True)
        results["sculpt"] = run_sculpt(args, data_path, adapters_dir)
        s = results["sculpt"]
        print(f"  Sculpt: {s['status']} in {s.get('wall_seconds', 0):.0f} s" + (f": {s.get('detail')}" if s["status"] != "ok" else "")
              + (f" (phases: {', '.join(f'{k} {v:.1f} s' for k, v in s['phase_seconds'].items())}; other processes used "
                 f"{s['others_cpu_cores_during_run']:.2f} cores meanwhile)" if "phase_seconds" in s else ""), flush=True)
    else:
        results["sculpt"] = {"status": "skipped"}
    if "adalora" in engines:
        print("  running PyTorch + PEFT AdaLoRA ...", flush=True)
        results["adalora"] = run_worker("adalora", args, data_path, None)
        r = results["adalora"]
        print(f"  AdaLoRA: {r['status']} in {r.get('wall_seconds', 0):.0f} s" + (f": {r.get('detail')}" if r["status"] != "ok" else "")
              + (f" (other processes used {r['others_cpu_cores_during_run']:.2f} cores meanwhile)"
                 if r.get("others_cpu_cores_during_run") is not None else ""), flush=True)
    else:
        results["adalora"] = {"status": "skipped"}
    if "check" in engines:
        print("  running the PyTorch check (base model; Sculpt's saved adapters) ...", flush=True)
        have = (adapters_dir / "adapter_model.safetensors").exists()
        results["check"] = run_worker("check", args, data_path, adapters_dir if have else None)
        r = results["check"]
        print(f"  check: {r['status']} in {r.get('wall_seconds', 0):.0f} s" + (f": {r.get('detail')}" if r["status"] != "ok" else ""), flush=True)
    else:
        results["check"] = {"status": "skipped"}
    total = time.perf_counter() - total_start

    s, a, c = results["sculpt"], results["adalora"], results["check"]
    print()
    if s.get("status") == "ok":
        print(f"Sculpt {args.sculpt_kernel} (built {s['binary_modified']}): `{s['alora_command']}`")
        for r in s["rounds"]:
            print(f"  {'warm-up' if r['round'] == 'warm-up' else 'round ' + r['round']}: validation loss {fmt(r['validation_loss'], '.4f')}"
                  + (f", moved {r['moved']} ranks" if "moved" in r else "")
                  + (f", scoring {r['passes']} passes in {r['scoring_seconds']:.1f} s" if "passes" in r else ""))
        print(f"  alora wall {s['phase_seconds'].get('alora', float('nan')):.1f} s between the markers (Sculpt's own \"done in\": "
              f"{fmt(s.get('alora_reported_seconds'), '.0f')} s); final ranks by projection: {s.get('ranks_by_projection')}; "
              f"peak RSS {s['max_resident_mb']:.0f} MB")
    if a.get("status") == "ok":
        print(f"PyTorch + PEFT AdaLoRA: torch {a['torch_version']} ({a['threads']} threads), peft {a['peft_version']}; "
              f"load + dequantize {a['load_seconds']:.1f} s; budget {a['initial_budget']} -> {a['target_budget']}; "
              f"final {a['final_rank']} ranks in use (rank_pattern: {a['final_rank_pattern_true']}), by projection "
              f"{a['ranks_by_projection']}, {a['modules_without_rank']} modules left with none")
        ce = [st["ce"] for st in a["steps"]]
        print(f"  training CE: first 10 steps {sum(ce[:10]) / len(ce[:10]):.3f}, last 10 {sum(ce[-10:]) / len(ce[-10:]):.3f}; "
              f"held-out loss of the first {VAL16} with PEFT's own (unmerged) forward {a['val16_peft_forward']:.4f} vs merged "
              f"{a['val16']:.4f}; peak RSS {a['max_resident_mb']:.0f} MB")
    if c.get("status") == "ok":
        sa = c.get("sculpt_adapters", {})
        if "total_rank" in sa:
            print(f"Sculpt's saved adapters in PyTorch: {sa['modules']} modules, {sa['total_rank']} ranks, scale(s) {sa['scales']}")
    print()
    table, records = report(args, cfg, s, a, c, args.total_steps)
    print(table)
    print(f"trainable params: in use = the ranks in use' A and B (AdaLoRA: A, E, B) entries; stored = what the optimizer holds "
          f"(ALoRA: capacity {2 * BUDGET} per module, AdaLoRA: init_r {INIT_R}). held-out loss: mean answer-token CE computed by "
          f"the same PyTorch code for every row, over all {held} held-out examples and over the first {VAL16} (Sculpt's own "
          f"validation batches; its printed figure in brackets). acc: mean of the {args.limit}-example subtasks; Sculpt's row is "
          f"its own `eval accuracy`, in brackets PyTorch's scoring of Sculpt's saved adapters. training s: Sculpt's whole `alora` "
          f"command (training + {args.rounds} scoring rounds + its validations), AdaLoRA's {args.total_steps} steps "
          f"(update_and_allocate included). * = other processes used more than {et.DISTURBED_CORES} cores meanwhile.")
    print()
    print(subtask_table(s, a, c))
    print(f"\ntotal run {total:.0f} s")
    for name, r in results.items():
        if r.get("status") not in ("ok", "skipped"):
            print(f"\n{name}: {r.get('status')} -- {r.get('detail')}")

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_path, args.keep / data_path.name)
        if adapters_dir.exists():
            shutil.copytree(adapters_dir, args.keep / adapters_dir.name, dirs_exist_ok=True)
    if args.json:
        payload = {"model": str(args.model), "config": cfg, "n": args.n, "heldout": held, "seed": args.seed, "limit": args.limit,
                   "threads": args.threads, "cpus": os.cpu_count(), "machine": platform.machine(), "total_steps": args.total_steps,
                   "phases": args.phases, "adalora_schedule": {"tinit": args.tinit, "tfinal": args.tfinal, "deltaT": args.delta_t,
                                                               "orth_reg_weight": args.orth_reg, "lr": args.schedule},
                   "data_stats": stats, "total_seconds": total, "table": records, "results": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=str) + "\n")
        print(f"\nfigures written to {args.json}")
    shutil.rmtree(work, ignore_errors=True)
    ok = all(results[e].get("status") == "ok" for e in engines)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
