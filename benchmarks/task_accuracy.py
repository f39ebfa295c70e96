#!/usr/bin/env python3
"""Multiple-choice accuracy of Sculpt next to an independent PyTorch implementation of the same
scoring, on the same GGUF weights, the same tasks and the same prompts, in one run.

Tasks: the generated Austen tasks (default: austen_lambada, austen_next_sentence), which Sculpt writes
once as task.json files (`data tasks NAME save=PATH`) that both sides then read by path; or BIG-bench
tasks by name when their optional files are in the cache (scripts/fetch_data.py bigbench).

Each implementation runs in a process of its own, one after the other:

* Sculpt -- the release binary's `sculpt-kernel repl` fed `model load M keep=no` (Float32 weights, as
  PyTorch computes: the scoring is what is checked here; with the blocks kept, products run on 8-bit
  activations and close choices can flip, `--keep` measures that), `data tasks T... limit=N`
  and `eval accuracy` on stdin; its table (acc, acc_norm, chance, seconds per task; percentages with
  one decimal) is parsed.
* PyTorch -- CPU float32, torch.set_num_threads(--threads), OMP_WAIT_POLICY=PASSIVE unless set
  (spinning OpenMP threads were ~19x slower on this shared machine). Nothing of Sculpt is called:
  the tasks are read from the cache's task.json files, the prompts built, tokenized and scored here.
  - Weights: the GGUF dequantized with engine_throughput.py's numpy reader under HF LLaMA names,
    Q/K rows un-permuted (training_step.load_weights), run by a LLaMA forward written here (HF
    rotate_half RoPE, SDPA with native GQA, output head tied to the embedding).
  - Tokenizer: the GGUF's own vocabulary and merges in HuggingFace `tokenizers` (BPE, byte level;
    pre-tokenizer Digits(individual_digits) then ByteLevel(GPT-2 regex), as SmolLM2's
    tokenizer.json has it; no special tokens parsed, none added).
  - Tasks (BIG-bench JSON): a task.json without "examples" is its subdirectories' task.json files
    (sorted), each a task `parent:sub`. Exact duplicate examples are dropped (first kept); only
    examples with a string "input" and a "target_scores" object of >= 2 numeric scores are kept;
    --limit keeps the first N of each (sub)task.
  - Choices: target_scores' keys sorted by code point. Prompt (0-shot) = task_prefix +
    example_input_prefix + input [+ choice_prefix + choice_prefix.join(listed) if
    append_choices_to_input] + example_output_prefix, with defaults "", "\\nQ: ", "\\nA: ",
    "\\n  choice: ", true overridden by the task file; listed =
    numpy.random.RandomState(42).permutation(sorted choices) (numpy itself, a new generator per
    example).
  - Scoring: prompt and each choice tokenized separately (no BOS) and concatenated; an empty prompt
    becomes [BOS] (EOS if there is none); past the context (8192) the choice keeps its first
    context-1 tokens and the prompt its last context-len(kept) tokens. Log-likelihood of a choice =
    sum over its tokens of log_softmax(logits of the previous position)[token] (float32 model,
    float64 sum). The prompt runs once; all choices of an example run as one batch on its KV cache.
    acc: the example scores target_scores[choice of the largest log-likelihood]; acc_norm: the same
    with log-likelihood / max(1, characters of the choice); ties go to the first in sorted order.
    chance = mean over examples of sum(scores) / number of choices.

Both implementations' acc and acc_norm per task are printed side by side with the difference in
points; the script exits 1 if any difference exceeds --tolerance (0.5 points). Sculpt prints one
decimal; when every score of a task is 0 or 1 and it has fewer than 1000 examples, Sculpt's count of
correct examples is recovered exactly from its percentage, and the difference is computed from the
two counts (marked "="), else from the printed percentage (up to 0.05 points of rounding).

Tokenizer check: the PyTorch worker writes the prompts and choices of the first --check-examples
examples of each task (each string to a file of its own) and, per task, one file of the first
--check-concat examples' prompts and choices joined by newlines, with its own token counts and, for
files of >= 2 tokens, the mean next-token loss of its model on them. A second Sculpt process runs
`data text FILE` + `eval ppl` on each file (its "tokens scored" is count - 1; a 1-token file fails
with "the text has 1 tokens"): token counts must be equal and losses agree to 1e-3.

Usage:
    bash benchmarks/setup_bench.sh        # bench venv: torch (CPU), transformers + tokenizers, numpy
    nice -n 19 python3 benchmarks/task_accuracy.py [--limit 400] [--tasks austen_lambada,austen_next_sentence] [--json OUT]

The parent needs only the standard library; the PyTorch worker runs under --python (default:
$SCULPT_BENCH_PYTHON, else ~/.cache/sculpt/bench-venv/bin/python if it exists, else this Python).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_throughput as et  # noqa: E402  (GGUF reader, paths, result protocol)

TASKS_DIR = et.CACHE / "tasks"
# The tasks generated from the Austen text (always there); BIG-bench's need its optional files in
# TASKS_DIR (scripts/fetch_data.py bigbench).
GENERATED = ("austen_lambada", "austen_next_sentence")
DEFAULT_TASKS = GENERATED
DEFAULT_LIMIT = 400
PROMPT_DEFAULTS = {"task_prefix": "", "example_input_prefix": "\nQ: ", "example_output_prefix": "\nA: ",
                   "choice_prefix": "\n  choice: ", "append_choices_to_input": True}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ---------------------------------------------------------------------------------------------
# Tasks and prompts (standard library + numpy; used by the worker)
# ---------------------------------------------------------------------------------------------


def task_directory(name: str) -> Path:
    """A task's directory: a path as given, else the BIG-bench cache's."""
    return Path(name) if "/" in name else TASKS_DIR / name


def load_tasks(name: str, limit: int | None) -> list[dict]:
    """The (sub)tasks of a task.json by directory, or of a BIG-bench task in the cache: [{name, prefixes..., examples}]."""
    directory = task_directory(name)
    name = directory.name
    data = json.loads((directory / "task.json").read_text(encoding="utf-8"))
    if "examples" not in data:
        subs = sorted(p for p in directory.iterdir() if (p / "task.json").is_file())
        return [load_one(f"{name}:{p.name}", json.loads((p / "task.json").read_text(encoding="utf-8")), limit)
                for p in subs]
    return [load_one(name, data, limit)]


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_one(name: str, data: dict, limit: int | None) -> dict:
    task = {"name": name}
    for key, default in PROMPT_DEFAULTS.items():
        task[key] = data.get(key, default)
    seen, examples, duplicates = set(), [], 0
    for raw in data.get("examples", []):
        key = json.dumps(raw, sort_keys=True)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        if not isinstance(raw, dict) or not isinstance(raw.get("input"), str):
            continue
        scores = raw.get("target_scores")
        if not isinstance(scores, dict) or len(scores) < 2:
            continue
        if not all(is_number(v) for v in scores.values()):
            continue
        choices = sorted(scores)  # by code point
        examples.append({"input": raw["input"], "choices": choices, "scores": [float(scores[c]) for c in choices]})
    task["duplicates_dropped"] = duplicates
    task["examples_valid"] = len(examples)
    task["examples"] = examples[:limit] if limit else examples
    return task


def build_prompt(task: dict, example: dict) -> str:
    import numpy as np
    text = task["example_input_prefix"] + example["input"]
    if task["append_choices_to_input"]:
        listed = np.random.RandomState(42).permutation(np.array(example["choices"], dtype=object))
        text += task["choice_prefix"] + task["choice_prefix"].join(str(c) for c in listed)
    return task["task_prefix"] + text + task["example_output_prefix"]


# ---------------------------------------------------------------------------------------------
# PyTorch worker
# ---------------------------------------------------------------------------------------------


def build_tokenizer(gguf: "et.GGUFFile"):
    """SmolLM2's byte-level BPE from the GGUF's vocabulary and merges, in HF `tokenizers`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    m = gguf.metadata
    if m.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError(f"tokenizer model {m.get('tokenizer.ggml.model')!r}: only byte-level BPE (gpt2) is built here")
    pre = m.get("tokenizer.ggml.pre", "gpt2")
    if pre not in ("smollm", "gpt2", "default"):
        raise ValueError(f"pre-tokenizer {pre!r} not supported here")
    vocab: dict[str, int] = {}
    for i, t in enumerate(m["tokenizer.ggml.tokens"]):
        vocab.setdefault(t, i)
    merges = [tuple(s.split(" ", 1)) for s in m["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                         if pre == "smollm" else byte_level)
    tok.decoder = decoders.ByteLevel()

    def encode(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False).ids if text else []

    return encode, pre


def build_model(model_path: Path, context: int):
    """A float32 LLaMA forward over the GGUF's weights: forward(ids [B, T], pos0, past, mask)."""
    import torch
    import torch.nn.functional as F
    import training_step

    sd, cfg = training_step.load_weights(model_path)  # the same weights as the other benchmarks
    D, H, KV, HD, eps = cfg["dim"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["norm_eps"]
    embed = sd["model.embed_tokens.weight"]
    head = sd.get("lm_head.weight", embed)
    layers = []
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        layers.append([sd[p + n] for n in ("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                           "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                           "post_attention_layernorm.weight", "mlp.gate_proj.weight",
                                           "mlp.up_proj.weight", "mlp.down_proj.weight")])
    norm = sd["model.norm.weight"]
    max_pos = context
    inv_freq = cfg["rope_base"] ** (-torch.arange(0, HD, 2, dtype=torch.float64) / HD)
    angles = torch.arange(max_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos_table = torch.cat([angles.cos(), angles.cos()], dim=-1).float()
    sin_table = torch.cat([angles.sin(), angles.sin()], dim=-1).float()

    def rms(x, w):
        return F.rms_norm(x, (D,), w, eps)

    def rope(x, cos, sin):  # x: [B, heads, T, HD]
        x1, x2 = x[..., :HD // 2], x[..., HD // 2:]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    def forward(ids, pos0=0, past=None, mask=None):
        """Final hidden states [B, T, D] of ids [B, T] at positions pos0.., and each layer's (k, v)
        of these positions. `past`: per layer (k, v) [1, KV, pos0, HD] of a shared prefix, which
        every row attends to; `mask` [T, pos0 + T] (True = attend) is then required."""
        B, T = ids.shape
        cos, sin = cos_table[pos0:pos0 + T], sin_table[pos0:pos0 + T]
        x = embed[ids]
        kv = []
        for attn_norm, wq, wk, wv, wo, ffn_norm, wg, wu, wd in layers:
            h = rms(x, attn_norm)
            q = rope(F.linear(h, wq).view(B, T, H, HD).transpose(1, 2), cos, sin)
            k = rope(F.linear(h, wk).view(B, T, KV, HD).transpose(1, 2), cos, sin)
            v = F.linear(h, wv).view(B, T, KV, HD).transpose(1, 2)
            kv.append((k, v))
            if past is not None:
                pk, pv = past[len(kv) - 1]
                k = torch.cat([pk.expand(B, -1, -1, -1), k], dim=2)
                v = torch.cat([pv.expand(B, -1, -1, -1), v], dim=2)
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
            else:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = x + F.linear(o.transpose(1, 2).reshape(B, T, D), wo)
            h = rms(x, ffn_norm)
            x = x + F.linear(F.silu(F.linear(h, wg)) * F.linear(h, wu), wd)
        return rms(x, norm), kv

    def log_probs(hidden):
        """log_softmax of the logits of hidden states [..., D], in float64."""
        return torch.log_softmax(F.linear(hidden, head).double(), dim=-1)

    return forward, log_probs, cfg


def choice_loglikelihoods(forward, log_probs, context: int, prompt: list[int], choices: list[list[int]]) -> list[float]:
    """Sum of log p(choice token | everything before it) for each choice after the prompt."""
    import torch

    if any(len(prompt) + len(c) > context for c in choices):  # rare: each choice on its own truncated sequence
        return [loglikelihood_alone(forward, log_probs, context, prompt, c) for c in choices]
    P = len(prompt)
    hidden, past = forward(torch.tensor([prompt]))
    first = log_probs(hidden[0, -1])  # next-token distribution after the prompt
    lls = [float(first[c[0]]) if c else 0.0 for c in choices]
    T = max(len(c) for c in choices) - 1  # the last token of a choice is never an input
    if T > 0:
        ids = torch.zeros(len(choices), T, dtype=torch.long)  # right padding: never attended to by real tokens
        for i, c in enumerate(choices):
            if len(c) > 1:
                ids[i, :len(c) - 1] = torch.tensor(c[:-1], dtype=torch.long)
        mask = torch.cat([torch.ones(T, P, dtype=torch.bool), torch.ones(T, T, dtype=torch.bool).tril()], dim=1)
        hidden, _ = forward(ids, pos0=P, past=past, mask=mask)
        for i, c in enumerate(choices):
            if len(c) > 1:
                lp = log_probs(hidden[i, :len(c) - 1])
                lls[i] += float(lp.gather(1, torch.tensor(c[1:])[:, None]).sum())
    return lls


def loglikelihood_alone(forward, log_probs, context: int, prompt: list[int], choice: list[int]) -> float:
    """The same for one choice in one causal forward of prompt + choice, truncated to the context."""
    import torch

    if not choice:
        return 0.0
    kept = choice[:context - 1]
    ids = prompt[-(context - len(kept)):] + kept
    hidden, _ = forward(torch.tensor([ids]))
    start = len(ids) - len(kept)
    lp = log_probs(hidden[0, start - 1:len(ids) - 1])
    return float(lp.gather(1, torch.tensor(kept)[:, None]).sum())


def mean_loss(forward, log_probs, ids: list[int]) -> float:
    import torch
    hidden, _ = forward(torch.tensor([ids]))
    lp = log_probs(hidden[0, :-1])
    return float(-lp.gather(1, torch.tensor(ids[1:])[:, None]).mean())


def torch_worker(args) -> dict:
    try:
        import numpy as np
        import torch
        import tokenizers
    except ImportError as error:
        return {"status": "not installed", "detail": f"{error} (bash benchmarks/setup_bench.sh installs it)"}
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    gguf = et.GGUFFile(args.model)
    encode, pre = build_tokenizer(gguf)
    m = gguf.metadata
    bos, eos = m.get("tokenizer.ggml.bos_token_id"), m.get("tokenizer.ggml.eos_token_id")
    arch = m.get("general.architecture", "llama")
    context = int(m.get(f"{arch}.context_length", 8192))
    gguf.close()
    forward, log_probs, _ = build_model(args.model, context)
    load_seconds = time.perf_counter() - start
    empty_prompt = [bos] if bos is not None else [eos]

    result = {"status": "ok", "torch_version": torch.__version__, "numpy_version": np.__version__,
              "tokenizers_version": tokenizers.__version__, "threads": torch.get_num_threads(),
              "load_seconds": load_seconds, "pre_tokenizer": pre, "context": context, "bos": bos, "eos": eos}
    with torch.inference_mode():
        # The model: next-token top-5 after "The capital of France is" (no BOS), as the other benchmarks check.
        ids = encode("The capital of France is")
        hidden, _ = forward(torch.tensor([et.CHECK_PROMPT]))
        logits = log_probs(hidden[0, -1])
        top5 = torch.topk(logits, 5).indices.tolist()
        result["check"] = {"tokenized_check_prompt": ids, "tokenizer_ok": ids == et.CHECK_PROMPT,
                           "top5_ids": top5, "model_ok": top5 == et.CHECK_TOP5_IDS}

        tasks, check_strings = [], []  # (label, text) tokenized by both implementations afterwards
        check_dir = Path(args.check_dir) if args.check_dir else None
        for name in args.tasks:
            for task in load_tasks(name, args.limit):
                t0 = time.perf_counter()
                rows, self_check = [], None
                for j, ex in enumerate(task["examples"]):
                    prompt_text = build_prompt(task, ex)
                    prompt = encode(prompt_text) or empty_prompt
                    choice_ids = [encode(c) for c in ex["choices"]]
                    lls = choice_loglikelihoods(forward, log_probs, context, prompt, choice_ids)
                    if j == 0:  # the batched KV-cache path against one plain causal forward per choice
                        alone = [loglikelihood_alone(forward, log_probs, context, prompt, c) for c in choice_ids]
                        self_check = max(abs(a - b) for a, b in zip(lls, alone))
                    best = max(range(len(lls)), key=lambda i: (lls[i], -i))
                    norm = [ll / max(1, len(c)) for ll, c in zip(lls, ex["choices"])]
                    best_norm = max(range(len(norm)), key=lambda i: (norm[i], -i))
                    rows.append({"acc": ex["scores"][best], "acc_norm": ex["scores"][best_norm],
                                 "chance": sum(ex["scores"]) / len(ex["scores"]), "pick": best, "pick_norm": best_norm,
                                 "loglikelihoods": [round(v, 6) for v in lls],
                                 "prompt_tokens": len(prompt), "choice_tokens": [len(c) for c in choice_ids]})
                    if check_dir is not None and j < max(args.check_examples, args.check_concat):
                        strings = [("prompt", prompt_text)] + [(f"choice{i}", c) for i, c in enumerate(ex["choices"])]
                        if j < args.check_examples:
                            check_strings += [(f"{task['name']} #{j} {label}", text) for label, text in strings]
                        if j < args.check_concat:
                            task.setdefault("_concat", []).extend(s for _, s in strings)
                seconds = time.perf_counter() - t0
                n = len(rows)
                print(f"    {task['name']}: {n} examples in {seconds:.0f} s", file=sys.stderr, flush=True)
                binary = all(s in (0.0, 1.0) for ex in task["examples"] for s in ex["scores"])
                tasks.append({
                    "task": task["name"], "examples": n, "examples_valid": task["examples_valid"],
                    "duplicates_dropped": task["duplicates_dropped"], "binary_scores": binary,
                    "acc": 100 * sum(r["acc"] for r in rows) / n, "acc_norm": 100 * sum(r["acc_norm"] for r in rows) / n,
                    "acc_count": sum(r["acc"] for r in rows), "acc_norm_count": sum(r["acc_norm"] for r in rows),
                    "chance": 100 * sum(r["chance"] for r in rows) / n, "seconds": seconds,
                    "prompt_tokens_mean": sum(r["prompt_tokens"] for r in rows) / n,
                    "kv_cache_vs_plain_max_abs_diff": self_check, "per_example": rows})
                if check_dir is not None and task.get("_concat"):
                    check_strings.append((f"{task['name']} first {args.check_concat} joined", "\n".join(task["_concat"])))
        check_files = [write_check(check_dir, i, label, text, encode, forward, log_probs)
                       for i, (label, text) in enumerate(check_strings) if text]
    result["tasks"] = tasks
    result["check_files"] = check_files
    result["max_resident_mb"] = et.vm_hwm_mb()
    return result


def write_check(check_dir: Path, index: int, label: str, text: str, encode, forward, log_probs) -> dict:
    ids = encode(text)
    path = check_dir / f"check{index:03d}.txt"
    path.write_text(text, encoding="utf-8")
    return {"file": str(path), "label": label, "tokens": len(ids),
            "loss": mean_loss(forward, log_probs, ids) if len(ids) >= 2 else None}


# ---------------------------------------------------------------------------------------------
# Parent: Sculpt, the worker, the tokenizer check, the table
# ---------------------------------------------------------------------------------------------


def run_with_stdin(cmd: list[str], stdin_text: str, timeout: float, env: dict | None = None,
                   pass_stderr: bool = False) -> dict:
    """Runs cmd with stdin_text on its standard input; output, wall and CPU seconds, peak RSS.
    pass_stderr: the child's stderr goes to ours (live progress) instead of being captured."""
    with tempfile.TemporaryFile() as inp, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        inp.write(stdin_text.encode("utf-8"))
        inp.seek(0)
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdin=inp, stdout=out, stderr=None if pass_stderr else err, env=env)
        except OSError as error:
            return {"returncode": None, "stdout": "", "stderr": str(error), "wall_seconds": 0.0}
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
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
                "stdout": ANSI.sub("", out.read().decode(errors="replace")),
                "stderr": ANSI.sub("", err.read().decode(errors="replace")),
                "wall_seconds": wall, "ru_maxrss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}


ROW = re.compile(r"^(\S+)\s+(\d+)\s+([\d.]+)% ± [\d.]+%\s+([\d.]+)% ± [\d.]+%(?:\s+(?:[\d.]+% ± [\d.]+%|—))?\s+([\d.]+)%\s+([\d.]+)\s*$")


def run_sculpt(args) -> dict:
    binary = Path(args.sculpt_kernel)
    for _ in range(60):  # the release binary may be being rebuilt: wait for it a little
        if binary.exists():
            break
        time.sleep(5)
    if not binary.exists():
        return {"status": "not built", "detail": f"{binary} does not exist"}
    script = (f"model load {args.model} keep={'yes' if args.keep else 'no'}\n"
              f"data tasks {' '.join(args.tasks)} limit={args.limit}\n"
              "eval accuracy\n")
    proc = run_with_stdin([str(binary), "repl"], script, args.timeout)
    tasks = {}
    lines = proc["stdout"].splitlines()
    in_table = False
    for line in lines:
        if line.startswith("Multiple-choice accuracy"):
            in_table = True
            continue
        match = ROW.match(line.strip()) if in_table else None
        if match:
            name, n, acc, acc_norm, chance, seconds = match.groups()
            tasks[name] = {"examples": int(n), "acc": float(acc), "acc_norm": float(acc_norm),
                           "chance": float(chance), "seconds": float(seconds)}
    header = next((line for line in lines if line.startswith("Multiple-choice accuracy")), None)
    result = {"command": [str(binary), "repl"], "stdin": script, "wall_seconds": proc["wall_seconds"],
              "cpu_seconds": proc.get("cpu_seconds"), "max_resident_mb": proc.get("ru_maxrss_mb"),
              "binary_modified": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(binary.stat().st_mtime)),
              "table_header": header, "tasks": tasks}
    if not tasks:
        result.update(status="error", detail=et.tail(proc["stderr"] or proc["stdout"]), returncode=proc["returncode"])
    else:
        result["status"] = "ok"
        if proc["stderr"].strip():
            result["stderr"] = et.tail(proc["stderr"])
    return result


def run_worker(args, check_dir: str) -> dict:
    cmd = [args.python, str(Path(__file__).resolve()), "--worker", "--model", str(args.model),
           "--tasks", ",".join(args.tasks), "--limit", str(args.limit), "--threads", str(args.threads),
           "--check-dir", check_dir, "--check-examples", str(args.check_examples), "--check-concat", str(args.check_concat)]
    # libgomp's threads spin while they wait for each other: on this shared 2-core machine, under
    # nice, a thread spinning for a descheduled sibling made scoring ~19x slower (social_iqa, 10
    # examples: 92 s against 4.9 s), so the worker waits passively unless the environment says otherwise.
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    proc = run_with_stdin(cmd, "", args.timeout, env=env, pass_stderr=True)
    found = [line for line in proc["stdout"].splitlines() if line.startswith(et.RESULT_PREFIX)]
    if not found:
        return {"status": "error", "command": cmd, "returncode": proc["returncode"], "timed_out": proc.get("timed_out"),
                "detail": et.tail(proc["stdout"]) or "see its output above"}
    result = json.loads(found[-1][len(et.RESULT_PREFIX):])
    result.update(command=cmd, omp_wait_policy=env["OMP_WAIT_POLICY"], wall_seconds=proc["wall_seconds"], cpu_seconds=proc.get("cpu_seconds"),
                  ru_maxrss_mb=proc.get("ru_maxrss_mb"))
    return result


def run_sculpt_tokenizer_check(args, files: list[dict]) -> dict:
    """Sculpt's token count and perplexity loss of each check file (`data text` + `eval ppl`)."""
    if not files:
        return {"status": "skipped"}
    script = f"model load {args.model} keep={'yes' if args.keep else 'no'}\n" + "".join(
        f"data text {f['file']}\neval ppl tokens=8191 window=8192\n" for f in files)
    proc = run_with_stdin([args.sculpt_kernel, "repl"], script, args.timeout)
    errors = iter(re.findall(r"the text has (\d+) tokens", proc["stderr"]))
    by_name, current = {}, None
    for line in proc["stdout"].splitlines():
        if line.startswith("Text: "):
            current = line[len("Text: "):].strip()
            by_name[current] = {}
        elif current is None:
            continue
        elif line.startswith("perplexity [") and line.rstrip().endswith("failed"):
            n = next(errors, None)
            by_name[current]["tokens"] = int(n) if n is not None else None
        elif m := re.match(r"tokens scored\s+(\d+)", line):
            by_name[current]["tokens"] = int(m.group(1)) + 1
        elif m := re.match(r"loss \(nats per token\)\s+([\d.]+)", line):
            by_name[current]["loss"] = float(m.group(1))
    rows = []
    for f in files:
        s = by_name.get(Path(f["file"]).stem, {})
        rows.append({**f, "sculpt_tokens": s.get("tokens"), "sculpt_loss": s.get("loss")})
    return {"status": "ok", "files": rows, "wall_seconds": proc["wall_seconds"]}


def exact_count(percent: float, n: int):
    """The count of correct examples behind a one-decimal percentage, when unambiguous."""
    if n >= 1000:
        return None
    count = round(percent * n / 100)
    return count if abs(100 * count / n - percent) <= 0.05 + 1e-9 else None


def compare(sculpt: dict, torch_tasks: list[dict], tolerance: float) -> tuple[list[dict], bool]:
    rows, ok = [], True
    for t in torch_tasks:
        s = sculpt.get("tasks", {}).get(t["task"])
        row = {"task": t["task"], "examples": t["examples"], "torch": {k: t[k] for k in ("acc", "acc_norm", "chance", "seconds", "acc_count", "acc_norm_count")},
               "sculpt": s}
        if s is None:
            row["status"] = "missing in Sculpt's table"
            ok = False
            rows.append(row)
            continue
        if s["examples"] != t["examples"]:
            row["status"] = f"example counts differ: Sculpt {s['examples']}, PyTorch {t['examples']}"
            ok = False
        for key in ("acc", "acc_norm"):
            count = exact_count(s[key], s["examples"]) if t["binary_scores"] and s["examples"] == t["examples"] else None
            if count is not None:
                row[f"sculpt_{key}_count"] = count
                diff, exact = 100 * (count - t[f"{key}_count"]) / t["examples"], True
            else:
                diff, exact = s[key] - t[key], False
            row[f"{key}_diff_points"], row[f"{key}_diff_exact"] = diff, exact
            if abs(diff) > tolerance + 1e-9:
                ok = False
        row["chance_diff_points"] = s["chance"] - t["chance"]
        if abs(row["chance_diff_points"]) > 0.05 + 1e-9:
            ok = False
        rows.append(row)
    return rows, ok


def format_table(rows: list[dict], tolerance: float) -> str:
    header = ["task", "examples", "Sculpt acc", "PyTorch acc", "diff", "Sculpt acc_norm", "PyTorch acc_norm", "diff",
              "chance", "Sculpt s", "PyTorch s"]
    table = []

    def count(v):
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"

    for r in rows:
        t, s = r["torch"], r.get("sculpt")
        if s is None:
            table.append([r["task"], str(r["examples"]), "—", f"{t['acc']:.1f}%", "—", "—", f"{t['acc_norm']:.1f}%", "—",
                          f"{t['chance']:.1f}%", "—", f"{t['seconds']:.1f}"])
            continue
        cells = [r["task"], str(r["examples"])]
        for key in ("acc", "acc_norm"):
            sc = r.get(f"sculpt_{key}_count")
            cells.append(f"{s[key]:.1f}% ({sc})" if sc is not None else f"{s[key]:.1f}%")
            cells.append(f"{t[key]:.2f}% ({count(t[key + '_count'])})")
            d = r[f"{key}_diff_points"]
            flag = "" if abs(d) <= tolerance + 1e-9 else " !"
            cells.append(("=" if r[f"{key}_diff_exact"] else "~") + f"{d:+.2f}{flag}")
        cells += [f"{s['chance']:.1f}%", f"{s['seconds']:.1f}", f"{t['seconds']:.1f}"]
        table.append(cells)
    widths = [max(len(row[i]) for row in [header] + table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in [header] + table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=et.DEFAULT_MODEL, help="GGUF model (default: %(default)s)")
    parser.add_argument("--sculpt-kernel", default=os.environ.get("SCULPT_KERNEL", str(et.DEFAULT_SCULPT)),
                        help="Sculpt release binary (default: $SCULPT_KERNEL or %(default)s)")
    parser.add_argument("--python", default=None,
                        help="Python for the PyTorch worker (default: $SCULPT_BENCH_PYTHON, else "
                             f"{et.BENCH_VENV_PYTHON} if it exists, else this Python)")
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated tasks (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="first N examples of each (sub)task (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=0.5, help="largest difference allowed, in points (default: %(default)s)")
    parser.add_argument("--check-examples", type=int, default=2,
                        help="examples per task whose prompt and choices are each tokenized by both (default: %(default)s)")
    parser.add_argument("--check-concat", type=int, default=20,
                        help="examples per task whose strings are joined into one file for the token-count and loss check (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per process (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="Sculpt keeps the file's blocks (integer kernels) instead of Float32")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--check-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]

    if args.worker:
        try:
            result = torch_worker(args)
        except Exception as error:  # reported to the parent
            import traceback
            traceback.print_exc()
            result = {"status": "error", "detail": f"{type(error).__name__}: {error}"}
        print(et.RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    if args.python is None:
        args.python = os.environ.get("SCULPT_BENCH_PYTHON") or (
            str(et.BENCH_VENV_PYTHON) if et.BENCH_VENV_PYTHON.exists() else sys.executable)
    if not args.model.exists():
        print(f"model not found: {args.model} (scripts/fetch_data.py fetches it)", file=sys.stderr)
        return 2
    generated_dir = tempfile.mkdtemp(prefix="sculpt-generated-tasks-")
    resolved = []
    for t in args.tasks:
        if t in GENERATED:
            # Sculpt writes the generated task as a task.json; both sides then read that file.
            path = Path(generated_dir) / t / "task.json"
            path.parent.mkdir(parents=True)
            done = subprocess.run([args.sculpt_kernel, "repl"], input=f"data tasks {t} save={path}\n", capture_output=True, text=True)
            if not path.exists():
                print(f"`data tasks {t} save={path}` wrote nothing:\n{done.stdout[-2000:]}{done.stderr[-2000:]}", file=sys.stderr)
                return 2
            resolved.append(str(path.parent))
        elif (TASKS_DIR / t / "task.json").exists():
            resolved.append(t)
        else:
            print(f"task {t} is neither generated ({', '.join(GENERATED)}) nor in {TASKS_DIR} "
                  "(BIG-bench's files are optional: scripts/fetch_data.py bigbench)", file=sys.stderr)
            return 2
    args.tasks = resolved

    print(f"Multiple-choice accuracy, 0-shot: {', '.join(args.tasks)}, first {args.limit} examples of each; "
          f"{args.model.name}; PyTorch {args.threads} threads, {os.cpu_count()} CPUs")
    print(f"  worker's Python: {args.python}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sculpt-task-accuracy-") as check_dir:
        print("  running Sculpt ...", end="", flush=True)
        sculpt = run_sculpt(args)
        print(f" {sculpt['status']} in {sculpt.get('wall_seconds', 0):.0f} s" + (f": {sculpt.get('detail')}" if sculpt["status"] != "ok" else ""))
        print("  running PyTorch:", flush=True)
        torch_result = run_worker(args, check_dir)
        print(f"  PyTorch: {torch_result['status']} in {torch_result.get('wall_seconds', 0):.0f} s"
              + (f": {torch_result.get('detail')}" if torch_result["status"] != "ok" else ""))
        if torch_result["status"] != "ok":
            return 1
        print("  running Sculpt's tokenizer check ...", end="", flush=True)
        tok = run_sculpt_tokenizer_check(args, torch_result.get("check_files", []))
        print(f" {tok['status']}" + (f" in {tok['wall_seconds']:.0f} s" if "wall_seconds" in tok else ""))
    total = time.perf_counter() - start

    rows, ok = compare(sculpt, torch_result["tasks"], args.tolerance)
    print()
    if sculpt["status"] == "ok":
        print(f"Sculpt {args.sculpt_kernel} (built {sculpt['binary_modified']}): {sculpt['wall_seconds']:.0f} s in all "
              f"(model load included), peak RSS {et.fmt(sculpt.get('max_resident_mb'))} MB")
    t = torch_result
    print(f"PyTorch {t['torch_version']} ({t['threads']} threads), tokenizers {t['tokenizers_version']}, numpy {t['numpy_version']}: "
          f"{t['wall_seconds']:.0f} s in all (load + dequantize {t['load_seconds']:.1f} s, tokenizer checks included), "
          f"peak RSS {t['max_resident_mb']:.0f} MB")
    c = t["check"]
    print(f"  checks: \"The capital of France is\" -> {c['tokenized_check_prompt']} ({'ok' if c['tokenizer_ok'] else 'MISMATCH'}), "
          f"next-token top-5 {c['top5_ids']} ({'ok' if c['model_ok'] else 'MISMATCH'}); batched KV-cache scoring vs one plain "
          f"forward per choice, max |diff| of a log-likelihood: "
          f"{max(x['kv_cache_vs_plain_max_abs_diff'] or 0 for x in t['tasks']):.1e}")
    for x in t["tasks"]:
        if x["duplicates_dropped"]:
            print(f"  {x['task']}: {x['duplicates_dropped']} exact duplicate example(s) dropped from the file "
                  f"({x['examples_valid']} valid examples left)")
    print()
    print(format_table(rows, args.tolerance))
    print(f"acc and acc_norm: percent of examples (count correct); diff = Sculpt - PyTorch in points, \"=\" from the counts "
          f"(Sculpt's recovered from its one-decimal percentage), \"~\" from Sculpt's printed percentage; "
          f"tolerance {args.tolerance} points; chance as Sculpt prints it "
          f"(PyTorch's differs by at most {max((abs(r.get('chance_diff_points', 0)) for r in rows), default=0):.2f})")
    print(f"seconds: scoring time per task (Sculpt's own column; PyTorch's measured in its worker), total run {total:.0f} s")

    tok_ok = True
    if tok.get("status") == "ok":
        files = tok["files"]
        count_bad = [f for f in files if f["sculpt_tokens"] != f["tokens"]]
        losses = [abs(f["sculpt_loss"] - f["loss"]) for f in files if f["loss"] is not None and f["sculpt_loss"] is not None]
        loss_bad = [d for d in losses if d > 1e-3]
        tok_ok = not count_bad and not loss_bad and len(losses) == sum(1 for f in files if f["loss"] is not None)
        print(f"\nTokenizer check: {len(files)} strings, {sum(f['tokens'] for f in files)} tokens: token counts "
              f"{'all equal' if not count_bad else f'{len(count_bad)} DIFFER'}; mean next-token loss of {len(losses)} of them "
              f"(Sculpt's eval ppl vs PyTorch) max |diff| {max(losses, default=float('nan')):.1e}")
        for f in count_bad[:10]:
            print(f"  {f['label']}: Sculpt {f['sculpt_tokens']} tokens, PyTorch {f['tokens']}")
    else:
        print(f"\nTokenizer check: {tok.get('status')}")
    if sculpt["status"] != "ok":
        print(f"\nSculpt: {sculpt['status']} -- {sculpt.get('detail')}")
    verdict = ok and tok_ok and sculpt["status"] == "ok" and c["tokenizer_ok"] and c["model_ok"]
    print(f"\n{'PASS' if verdict else 'FAIL'}: every acc and acc_norm within {args.tolerance} points"
          + ("" if ok else " -- NOT MET") + ("" if tok_ok else "; tokenizer check failed"))

    if args.json:
        payload = {"model": str(args.model), "tasks": args.tasks, "limit": args.limit, "threads": args.threads,
                   "cpus": os.cpu_count(), "machine": platform.machine(), "tolerance_points": args.tolerance,
                   "total_seconds": total, "pass": verdict, "comparison": rows, "sculpt": sculpt,
                   "torch": torch_result, "tokenizer_check": tok}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=str) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
