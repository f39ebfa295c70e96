#!/usr/bin/env python3
"""LoRA training step of Sculpt next to PyTorch + PEFT, on the same GGUF weights, in one run.

Each engine runs in a subprocess of its own, one after the other, so that neither its speed nor
its peak memory mixes with another's. The configuration is the one Sculpt's bench measures:
LoRA rank 8 (alpha 16, no dropout) on all seven projections (q, k, v, o, gate, up, down) of
every layer of the frozen model, batch 4 x 128 random token ids, next-token cross-entropy over
all positions (logits of every position), global-norm gradient clipping at 1, AdamW (lr 1e-4)
on the adapters only; one warm-up step, then --steps timed steps, median reported.

* Sculpt -- the release binary's `sculpt-kernel bench --model M --train --steps N` (JSON on
  stdout: train_step_seconds_median, train_step_seconds, max_resident_mb).
* PyTorch + PEFT ("peft") -- CPU float32, torch.set_num_threads(--threads): the GGUF is read and
  dequantized with engine_throughput.py's numpy reader into a plain torch LLaMA built from
  nn.Linear modules named q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (Q/K
  rows un-permuted from llama.cpp's interleaved-RoPE order, HF rotate_half RoPE, SDPA causal
  attention with native GQA, output head tied to the embedding), wrapped by
  peft.get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0, target_modules=the
  seven)). Step: zero_grad, forward, F.cross_entropy, backward, clip_grad_norm_(1.0),
  torch.optim.AdamW(lr=1e-4).step() over the trainable (LoRA) parameters only.
* PyTorch + PEFT on transformers' LlamaForCausalLM ("peft-hf", not run by default) -- the same
  weights loaded into LlamaForCausalLM(LlamaConfig(...), sdpa attention, tied embeddings), with
  PEFT's task_type CAUSAL_LM; the same step. It is what a user of the HF stack would run.

Both PyTorch workers first check the wrapped model (LoRA B starts at zero, so its output is the
base model's): the next-token top-5 after [504, 3575, 282, 4649, 314] ("The capital of France
is", no BOS) must be [7042, 260, 4528, 2250, 1315].

Peak RSS is each subprocess's own VmHWM (Sculpt's `max_resident_mb`), with wait4's ru_maxrss as a
cross-check; the PyTorch workers also report the peak during the training steps alone (VmHWM
reset through /proc/self/clear_refs). The machine is shared: the CPU time other processes used
while each engine ran is measured and printed, and step times measured while they used more
than 0.25 cores are starred. --wait-quiet waits for a quiet moment before each engine, and
--attempts reruns an engine that was disturbed.

Usage:
    bash benchmarks/setup_bench.sh        # bench venv: torch (CPU), peft, transformers, ...
    nice -n 19 python3 benchmarks/training_step.py [--json OUT] [--wait-quiet 300 --attempts 3]

The parent needs only the standard library; the PyTorch workers run under --python (default:
$SCULPT_BENCH_PYTHON, else ~/.cache/sculpt/bench-venv/bin/python if it exists, else this Python).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_throughput as et  # noqa: E402  (GGUF reader, process runner, CPU-disturbance helpers)

ENGINES = ("sculpt", "peft", "peft-hf")
DEFAULT_ENGINES = ("sculpt", "peft")
COLUMN = {"sculpt": "Sculpt", "peft": "PyTorch+PEFT", "peft-hf": "PyTorch+PEFT (HF Llama)"}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BATCH, SEQ, RANK, ALPHA, LR = 4, 128, 8, 16, 1e-4
# Figures measured earlier on this machine (the reference): PyTorch + PEFT, 2 threads.
REFERENCE = {"step_seconds_2_threads": 2.7, "step_seconds_1_thread": 3.9, "peak_rss_mb": 3400}


# ---------------------------------------------------------------------------------------------
# PyTorch workers
# ---------------------------------------------------------------------------------------------


def load_weights(model_path: Path) -> tuple[dict, dict]:
    """The GGUF dequantized to float32 torch tensors under HF LLaMA names, Q/K rows un-permuted."""
    import torch

    gguf = et.GGUFFile(model_path)
    cfg = gguf.llama_config()
    hd = cfg["head_dim"]

    def tensor(name):
        return torch.from_numpy(gguf.dequantize(name))

    def unpermute(w, n_head):  # inverse of llama.cpp's converter permutation (as in engine_throughput.py)
        return w.reshape(n_head, hd // 2, 2, w.shape[-1]).transpose(1, 2).reshape(w.shape).contiguous()

    sd = {"model.embed_tokens.weight": tensor("token_embd.weight"), "model.norm.weight": tensor("output_norm.weight")}
    if not cfg["tied_output"]:
        sd["lm_head.weight"] = tensor("output.weight")
    for i in range(cfg["layers"]):
        g, h = f"blk.{i}.", f"model.layers.{i}."
        sd[h + "input_layernorm.weight"] = tensor(g + "attn_norm.weight")
        sd[h + "post_attention_layernorm.weight"] = tensor(g + "ffn_norm.weight")
        sd[h + "self_attn.q_proj.weight"] = unpermute(tensor(g + "attn_q.weight"), cfg["heads"])
        sd[h + "self_attn.k_proj.weight"] = unpermute(tensor(g + "attn_k.weight"), cfg["kv_heads"])
        sd[h + "self_attn.v_proj.weight"] = tensor(g + "attn_v.weight")
        sd[h + "self_attn.o_proj.weight"] = tensor(g + "attn_output.weight")
        sd[h + "mlp.gate_proj.weight"] = tensor(g + "ffn_gate.weight")
        sd[h + "mlp.up_proj.weight"] = tensor(g + "ffn_up.weight")
        sd[h + "mlp.down_proj.weight"] = tensor(g + "ffn_down.weight")
    gguf.close()
    return sd, cfg


def plain_llama(sd: dict, cfg: dict, max_pos: int):
    """A minimal LLaMA as an nn.Module tree with HF's module names; forward(ids [B, T]) -> logits
    [B, T, V] of every position."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    D, H, KV, HD, eps = cfg["dim"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["norm_eps"]

    def linear(name):  # the weight as given, no random initialization first
        w = sd[name]
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False, device="meta")
        lin.weight = nn.Parameter(w, requires_grad=False)
        return lin

    def norm_weight(name):
        return nn.Parameter(sd[name], requires_grad=False)

    def rms(x, w):
        return F.rms_norm(x, (D,), w, eps)

    inv_freq = cfg["rope_base"] ** (-torch.arange(0, HD, 2, dtype=torch.float64) / HD)
    angles = torch.arange(max_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos_table = torch.cat([angles.cos(), angles.cos()], dim=-1).float()
    sin_table = torch.cat([angles.sin(), angles.sin()], dim=-1).float()

    def rope(x, cos, sin):  # x: [B, heads, T, HD]
        x1, x2 = x[..., :HD // 2], x[..., HD // 2:]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    class Attention(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.q_proj, self.k_proj = linear(p + "q_proj.weight"), linear(p + "k_proj.weight")
            self.v_proj, self.o_proj = linear(p + "v_proj.weight"), linear(p + "o_proj.weight")

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            q = rope(self.q_proj(x).view(B, T, H, HD).transpose(1, 2), cos, sin)
            k = rope(self.k_proj(x).view(B, T, KV, HD).transpose(1, 2), cos, sin)
            v = self.v_proj(x).view(B, T, KV, HD).transpose(1, 2)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            return self.o_proj(o.transpose(1, 2).reshape(B, T, D))

    class MLP(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.gate_proj, self.up_proj = linear(p + "gate_proj.weight"), linear(p + "up_proj.weight")
            self.down_proj = linear(p + "down_proj.weight")

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self, i):
            super().__init__()
            p = f"model.layers.{i}."
            self.input_layernorm = norm_weight(p + "input_layernorm.weight")
            self.post_attention_layernorm = norm_weight(p + "post_attention_layernorm.weight")
            self.self_attn, self.mlp = Attention(p + "self_attn."), MLP(p + "mlp.")

        def forward(self, x, cos, sin):
            x = x + self.self_attn(rms(x, self.input_layernorm), cos, sin)
            return x + self.mlp(rms(x, self.post_attention_layernorm))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding.from_pretrained(sd["model.embed_tokens.weight"], freeze=True)
            self.layers = nn.ModuleList(Layer(i) for i in range(cfg["layers"]))
            self.norm = norm_weight("model.norm.weight")
            self.lm_head = None if cfg["tied_output"] else linear("lm_head.weight")
            self.register_buffer("cos_table", cos_table, persistent=False)
            self.register_buffer("sin_table", sin_table, persistent=False)

        def forward(self, input_ids):
            T = input_ids.shape[1]
            cos, sin = self.cos_table[:T], self.sin_table[:T]
            x = self.embed_tokens(input_ids)
            for layer in self.layers:
                x = layer(x, cos, sin)
            x = rms(x, self.norm)
            return self.lm_head(x) if self.lm_head is not None else F.linear(x, self.embed_tokens.weight)

    return Llama()


def hf_llama(sd: dict, cfg: dict, max_pos: int):
    """transformers' LlamaForCausalLM with the same weights (sdpa attention, tied embeddings)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=cfg["vocab"], hidden_size=cfg["dim"], intermediate_size=cfg["ffn_dim"],
        num_hidden_layers=cfg["layers"], num_attention_heads=cfg["heads"], num_key_value_heads=cfg["kv_heads"],
        head_dim=cfg["head_dim"], rms_norm_eps=cfg["norm_eps"], rope_theta=cfg["rope_base"],
        max_position_embeddings=max_pos, tie_word_embeddings=cfg["tied_output"], attention_bias=False,
        mlp_bias=False, hidden_act="silu", use_cache=False, attn_implementation="sdpa", torch_dtype=torch.float32)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    # Non-persistent buffers (RoPE inv_freq) are still on the meta device: recompute them on the CPU.
    for module in model.modules():
        if hasattr(module, "inv_freq") and module.inv_freq.is_meta:
            rope_init = getattr(module, "rope_init_fn", None)
            if rope_init is not None:
                inv_freq, scaling = rope_init(module.config, torch.device("cpu"))
                module.attention_scaling = scaling
            else:
                hd = cfg["head_dim"]
                inv_freq = 1.0 / (cfg["rope_base"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
            module.register_buffer("inv_freq", inv_freq, persistent=False)
            if hasattr(module, "original_inv_freq"):
                module.original_inv_freq = inv_freq
    if cfg["tied_output"]:
        model.tie_weights()
        missing = [m for m in missing if m != "lm_head.weight"]
    leftovers = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if missing or unexpected or leftovers:
        raise RuntimeError(f"weights not loaded: missing {missing}, unexpected {unexpected}, on meta {leftovers}")
    assert not cfg["tied_output"] or model.lm_head.weight is model.model.embed_tokens.weight
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def reset_peak_rss() -> bool:
    """Resets VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peft_worker(args, hf: bool) -> dict:
    try:
        import torch
        import torch.nn.functional as F
        import peft
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        return {"status": "not installed", "detail": f"{error} (bash benchmarks/setup_bench.sh installs peft)"}
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    load_start = time.perf_counter()
    sd, cfg = load_weights(args.model)
    model = (hf_llama if hf else plain_llama)(sd, cfg, max_pos=max(SEQ, 64))
    del sd
    V = cfg["vocab"]
    lora = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=list(TARGETS), bias="none",
                      task_type="CAUSAL_LM" if hf else None)
    model = get_peft_model(model, lora)
    model.train()
    load_seconds = time.perf_counter() - load_start

    def logits_of(ids):
        out = model(input_ids=ids)
        return out.logits if hasattr(out, "logits") else out

    trainable = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    adapted = sorted({n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names})
    import transformers
    result = {"status": "ok", "torch_version": torch.__version__, "peft_version": peft.__version__,
              "transformers_version": transformers.__version__, "threads": torch.get_num_threads(),
              "model": "transformers LlamaForCausalLM" if hf else "plain nn.Module LLaMA",
              "load_seconds": load_seconds, "trainable_parameters": sum(p.numel() for p in trainable),
              "trainable_tensors": len(trainable), "adapted_modules": adapted,
              "lora_layers": sum(1 for n in names if n.endswith("lora_A.default.weight")),
              "total_parameters": sum(p.numel() for p in model.parameters()), "batch": BATCH, "seq": SEQ,
              "rank": RANK, "lora_alpha": ALPHA}

    # Correctness: the wrapped model's next-token top-5 after the check prompt (LoRA B = 0).
    with torch.no_grad():
        logits = logits_of(torch.tensor([et.CHECK_PROMPT]))[0, -1]
        top = torch.topk(logits, 5)
        ids5 = top.indices.tolist()
        lse = float(torch.logsumexp(logits.double(), dim=-1))
        ref = dict(zip(et.CHECK_TOP5_IDS, et.CHECK_TOP5_LOGITS))
        result["check"] = {"top5_ids": ids5, "top5_logits": [round(v, 4) for v in top.values.tolist()],
                           "logsumexp": round(lse, 4), "ids_match": ids5 == et.CHECK_TOP5_IDS,
                           "max_abs_diff_logits": max(abs(float(logits[i]) - v) for i, v in ref.items()),
                           "abs_diff_logsumexp": abs(lse - et.CHECK_LOGSUMEXP)}

    optimizer = torch.optim.AdamW(trainable, lr=LR)
    generator = torch.Generator().manual_seed(5)
    losses, norms = [], []

    def step():
        window = torch.randint(V, (BATCH, SEQ + 1), generator=generator)
        x, y = window[:, :-1], window[:, 1:]
        optimizer.zero_grad(set_to_none=True)
        logits = logits_of(x)  # [B, T, V]: every position's logits
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(trainable, 1.0)))
        optimizer.step()
        losses.append(loss.item())

    result["max_resident_mb_before_training"] = et.vm_hwm_mb()
    result["peak_rss_reset"] = reset_peak_rss()
    seconds, times = et.median_seconds(step, args.steps, warmup=1)
    result["train_step_seconds_median"] = seconds
    result["train_step_seconds"] = times
    result["losses"] = [round(v, 4) for v in losses]
    result["grad_norms_before_clip"] = [round(v, 4) for v in norms]
    with torch.no_grad():  # the adapters moved: LoRA B started at zero
        lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
        result["lora_b_abs_mean_after"] = float(sum(p.abs().mean() for p in lora_b) / len(lora_b))
    result["max_resident_mb_training"] = et.vm_hwm_mb() if result["peak_rss_reset"] else None
    # Whole-process peak: the larger of the peak before the reset and the peak since.
    result["max_resident_mb"] = max(result["max_resident_mb_before_training"], et.vm_hwm_mb())
    return result


# ---------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------


def run_sculpt(args) -> dict:
    result = et.run_sculpt_bench(args, ["--train", "--steps", str(args.steps)])
    if result["status"] == "ok" and not result.get("train_step_seconds"):
        return {"status": "error", "command": result["command"], "detail": f"no step times: {result}",
                "cpu_seconds": result.get("cpu_seconds", 0.0)}
    return result


def run_worker(engine: str, args) -> dict:
    cmd = [args.python, str(Path(__file__).resolve()), "--worker", engine, "--model", str(args.model),
           "--steps", str(args.steps), "--threads", str(args.threads)]
    proc = et.run_process(cmd, args.timeout)
    lines = [line for line in proc["stdout"].splitlines() if line.startswith(et.RESULT_PREFIX)]
    if not lines:
        return {"status": "error", "command": cmd, "returncode": proc["returncode"], "timed_out": proc.get("timed_out"),
                "detail": et.tail(proc["stderr"] or proc["stdout"]), "cpu_seconds": proc.get("cpu_seconds", 0.0)}
    result = json.loads(lines[-1][len(et.RESULT_PREFIX):])
    result.update(command=cmd, wall_seconds=proc["wall_seconds"], ru_maxrss_mb=proc["ru_maxrss_mb"],
                  cpu_seconds=proc["cpu_seconds"])
    return result


def run_engine(engine: str, args) -> dict:
    """Runs the engine up to --attempts times while it was disturbed; keeps the least disturbed."""
    return et.run_with_attempts(COLUMN[engine], lambda: run_sculpt(args) if engine == "sculpt" else run_worker(engine, args), args)


def build_table(results: dict, engines: list[str]) -> tuple[str, dict]:
    tokens = BATCH * SEQ
    ok = {e: results[e] for e in engines if results.get(e, {}).get("status") == "ok"}
    figures = {e: {"step": r["train_step_seconds_median"], "tps": tokens / r["train_step_seconds_median"],
                   "rss": r.get("max_resident_mb")} for e, r in ok.items()}
    disturbed = {e for e in ok if ok[e].get("others_cpu_cores_during_run", 0) > et.DISTURBED_CORES}
    peers = [e for e in engines if e != "sculpt"]
    s = figures.get("sculpt")
    header = [""] + [COLUMN[e] for e in engines] + [f"Sculpt/{COLUMN[p]}" for p in peers if p in figures] + ["target"]
    rows = [("seconds per step (median)", "step", ".3f"), (f"tokens/s ({tokens} per step)", "tps", ".0f"),
            ("peak RSS MB", "rss", ".0f")]
    main_peer = next((p for p in peers if p in figures), None)
    verdicts = {"disturbed_engines": sorted(disturbed), "compared_with": main_peer}
    table = []
    for label, key, spec in rows:
        speed = key != "rss"
        cells = [label]
        for e in engines:
            if e in figures and figures[e][key] is not None:
                cells.append(format(figures[e][key], spec) + ("*" if speed and e in disturbed else ""))
            else:
                cells.append(results.get(e, {}).get("status", "skipped"))
        for p in peers:
            if p in figures:
                cells.append(f"{s[key] / figures[p][key]:.2f}x" if s and s[key] and figures[p][key] else "—")
        target = ""
        if main_peer and s:
            peer = figures[main_peer]
            star = "*" if speed and ({"sculpt", main_peer} & disturbed) else ""
            if key == "step":
                passed = s["step"] < peer["step"]
                verdicts["step_time_below_pytorch_peft"] = passed
                target = f"< {COLUMN[main_peer]}: {et.verdict(passed)}{star}"
            elif key == "rss" and s["rss"] and peer["rss"]:
                passed = s["rss"] < peer["rss"]
                verdicts["peak_rss_below_pytorch_peft"] = passed
                target = f"< {COLUMN[main_peer]}: {et.verdict(passed)}"
        cells.append(target)
        table.append(cells)
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 or i == len(header) - 1 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in [header] + table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines), verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=et.DEFAULT_MODEL, help="GGUF model (default: %(default)s)")
    parser.add_argument("--sculpt-kernel", default=os.environ.get("SCULPT_KERNEL", str(et.DEFAULT_SCULPT)),
                        help="Sculpt release binary (default: $SCULPT_KERNEL or %(default)s)")
    parser.add_argument("--python", default=None,
                        help="Python for the PyTorch workers (default: $SCULPT_BENCH_PYTHON, else "
                             f"{et.BENCH_VENV_PYTHON} if it exists, else this Python)")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                        help=f"comma-separated subset of {','.join(ENGINES)} (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: %(default)s)")
    et.add_run_options(parser)
    parser.add_argument("--worker", choices=("peft", "peft-hf"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        try:
            result = peft_worker(args, hf=args.worker == "peft-hf")
        except Exception as error:  # reported to the parent, which carries on with the other engines
            import traceback
            traceback.print_exc()
            result = {"status": "error", "detail": f"{type(error).__name__}: {error}"}
        print(et.RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; choose from {ENGINES}")
    engines = [e for e in ENGINES if e in engines]
    if args.python is None:
        args.python = os.environ.get("SCULPT_BENCH_PYTHON") or (
            str(et.BENCH_VENV_PYTHON) if et.BENCH_VENV_PYTHON.exists() else sys.executable)
    if not args.model.exists():
        print(f"model not found: {args.model} (scripts/fetch_data.py fetches it)", file=sys.stderr)
        return 2
    gguf = et.GGUFFile(args.model)
    cfg = gguf.llama_config()
    gguf.close()

    print(f"LoRA training step: {args.model.name}, rank {RANK} (alpha {ALPHA}) on {', '.join(TARGETS)}, "
          f"batch {BATCH} x {SEQ}, AdamW lr {LR:g}, clip 1.0; median of {args.steps} steps after a warm-up; "
          f"torch threads {args.threads}, {os.cpu_count()} CPUs")
    print(f"  model: {cfg['layers']} layers, dim {cfg['dim']}, {cfg['heads']} heads / {cfg['kv_heads']} KV, "
          f"FFN {cfg['ffn_dim']}, vocab {cfg['vocab']}, tied output {cfg['tied_output']}")
    print(f"  workers' Python: {args.python}")
    results = {e: run_engine(e, args) if e in engines else {"status": "skipped"} for e in ENGINES}

    table, verdicts = build_table(results, engines)
    print()
    s = results["sculpt"]
    if s.get("status") == "ok":
        print(f"Sculpt {args.sculpt_kernel} (built {s['binary_modified']}): load {s.get('load_seconds', 0):.2f} s; "
              f"steps {', '.join(f'{t:.3f}' for t in s['train_step_seconds'])} s; peak RSS {s['max_resident_mb']:.0f} MB "
              f"(wait4 ru_maxrss {et.fmt(s.get('ru_maxrss_mb'))} MB); OpenBLAS kernels {s.get('blas_kernels', '?')}"
              f"{' (OPENBLAS_CORETYPE=' + os.environ['OPENBLAS_CORETYPE'] + ')' if 'OPENBLAS_CORETYPE' in os.environ else ''}")
    for e in ("peft", "peft-hf"):
        r = results[e]
        if r.get("status") != "ok":
            continue
        print(f"{COLUMN[e]}: torch {r['torch_version']} ({r['threads']} threads), peft {r['peft_version']}, "
              f"transformers {r['transformers_version']}, {r['model']}; load+dequantize {r['load_seconds']:.1f} s")
        print(f"  {r['trainable_parameters']:,} trainable of {r['total_parameters']:,} parameters "
              f"({r['lora_layers']} LoRA layers on {', '.join(r['adapted_modules'])}); "
              f"steps {', '.join(f'{t:.3f}' for t in r['train_step_seconds'])} s; losses {r['losses']}")
        print(f"  peak RSS {r['max_resident_mb']:.0f} MB (before training {r['max_resident_mb_before_training']:.0f}, "
              f"during the steps {et.fmt(r.get('max_resident_mb_training'))}; wait4 ru_maxrss {et.fmt(r.get('ru_maxrss_mb'))})")
        c = r["check"]
        print(f"  check: top-5 {c['top5_ids']} (reference {et.CHECK_TOP5_IDS}): "
              f"{'match' if c['ids_match'] else 'MISMATCH'}; max |logit diff| {c['max_abs_diff_logits']:.2e}, "
              f"|logsumexp diff| {c['abs_diff_logsumexp']:.2e}")
    print()
    print(table)
    print(f"Reference (measured earlier here): PyTorch+PEFT {REFERENCE['step_seconds_2_threads']} s/step on 2 threads, "
          f"{REFERENCE['step_seconds_1_thread']} s on 1 thread, peak RSS ~{REFERENCE['peak_rss_mb']} MB")
    ran = [f"{COLUMN[e]} {results[e]['others_cpu_cores_during_run']:.2f}" for e in engines
           if results[e].get("status") == "ok"]
    if ran:
        print(f"Other processes' CPU use while each engine ran (cores of {os.cpu_count()}): {', '.join(ran)}"
              " -- step times are comparable only when these are near 0")
    if verdicts["disturbed_engines"]:
        print(f"* measured while other processes used more than {et.DISTURBED_CORES} cores: not comparable, run again")
    for e in engines:
        r = results[e]
        if r.get("status") not in ("ok", "skipped"):
            print(f"\n{COLUMN[e]}: {r['status']}" + (f" -- {r['detail']}" if r.get("detail") else ""))

    if args.json:
        payload = {"model": str(args.model), "config": cfg, "batch": BATCH, "seq": SEQ, "rank": RANK,
                   "lora_alpha": ALPHA, "learning_rate": LR, "targets": TARGETS, "steps": args.steps,
                   "threads": args.threads, "cpus": os.cpu_count(), "machine": platform.machine(),
                   "reference": REFERENCE, "engines": results, "targets_met": verdicts}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
