#!/usr/bin/env python3
"""Engine throughput of Sculpt next to PyTorch and llama.cpp, on the same GGUF weights, in one run.

Each engine runs in a subprocess of its own, one after the other, so that neither its speed nor
its peak memory mixes with another's:

* Sculpt -- the release binary's `sculpt-kernel bench --model M --prefill N --generate G --runs R`
  (JSON on stdout: OpenBLAS SGEMM rate at the model's shapes, the GEMM-bound token rate, prefill
  tokens/s with all-position and last-position logits, greedy generation tokens/s, peak RSS).
* PyTorch -- CPU float32 with `torch.set_num_threads(--threads)`: the GGUF (Q4_1 / Q8_0 / F32) is
  read and dequantized here in numpy and run by a minimal LLaMA forward written in torch (fused
  QKV and gate/up projections, scaled_dot_product_attention, a preallocated KV cache). GGUF's Q/K
  rows were permuted by llama.cpp's converter for interleaved RoPE; they are un-permuted on load
  and RoPE is applied HF-style (rotate_half). Prefill: one forward of 1 x N tokens, median of R
  after a warm-up, once computing the logits of every position and once of the last only.
  Generation: greedy, KV cache, G tokens after the 5-token prompt below, tokens/s over the G
  argmax + decode steps (the prompt's prefill is not timed), median of R after a warm-up.
  A correctness check runs the prompt [504, 3575, 282, 4649, 314] ("The capital of France is",
  no BOS) and compares the next-token top-5 and logsumexp with the reference values; a worker of
  its own compares the numpy dequantization with the gguf package's (when installed).
* llama.cpp -- llama-cpp-python's low-level API (ctypes bindings of llama.h) with n_threads =
  n_threads_batch = --threads, n_batch = n_ubatch = N. Prompt processing: N tokens decoded as one
  batch on an empty KV cache (llama_memory_clear before every run; the low-level API has no
  prompt cache), median of R after a warm-up, once with logits for every position and once for
  the last only. Generation: as for PyTorch (5-token prompt, then G single-token decodes with a
  numpy argmax).

Peak RSS is each subprocess's own: VmHWM from /proc/self/status as the engine reports it (Sculpt's
`max_resident_mb`), and ru_maxrss from wait4() as a cross-check (in the JSON). The machine is
shared, so the CPU time other processes used while each engine ran is measured (/proc/stat minus
the engine's own) and printed: figures are comparable only when it is near 0. --wait-quiet waits
for a quiet moment before each engine, and --attempts reruns an engine that was disturbed.

Prefill ratios against the GEMM-bound limit: Sculpt's `gemm_bound_tokens_per_second` is the SGEMM
rate divided by the FLOPs per token of every projection including the output head, which is the
bound for all-position logits. With last-position logits the head runs once per sequence, so the
last-logit row is compared with the bound without the head (same SGEMM rate, FLOPs from the GGUF's
shapes).

Usage:
    bash benchmarks/setup_bench.sh        # venv with torch, llama-cpp-python, numpy, gguf
    nice -n 19 python3 benchmarks/engine_throughput.py [--json OUT] [--wait-quiet 300 --attempts 3]

The parent process needs only the standard library; the PyTorch and llama.cpp workers run under
--python (default: $SCULPT_BENCH_PYTHON, else ~/.cache/sculpt/bench-venv/bin/python if it exists,
else this Python). An engine whose package is missing is reported as "not installed" and the
others still run; --engines picks a subset.
"""

from __future__ import annotations

import argparse
import json
import math
import mmap
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SCULPT_CACHE", Path.home() / ".cache" / "sculpt"))
DEFAULT_MODEL = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SCULPT = REPO_ROOT / ".build" / "release" / "sculpt-kernel"
BENCH_VENV_PYTHON = CACHE / "bench-venv" / "bin" / "python"

ENGINES = ("sculpt", "torch", "llama.cpp")
COLUMN = {"sculpt": "Sculpt", "torch": "PyTorch", "llama.cpp": "llama.cpp"}

# Correctness reference: next-token logits after "The capital of France is" (no BOS).
CHECK_PROMPT = [504, 3575, 282, 4649, 314]
CHECK_TOP5_IDS = [7042, 260, 4528, 2250, 1315]
CHECK_TOP5_LOGITS = [17.3713, 14.8886, 13.2450, 13.0095, 12.9515]
CHECK_LOGSUMEXP = 17.6293

TARGET_GEMM_FRACTION = 0.75
DISTURBED_CORES = 0.25  # other processes' CPU use during an engine's run above which its speeds are starred
RESULT_PREFIX = "ENGINE-RESULT "

# ---------------------------------------------------------------------------------------------
# GGUF: metadata and tensor directory in pure Python; tensor data with numpy (workers only)
# ---------------------------------------------------------------------------------------------

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1, GGML_Q8_0, GGML_BF16 = 0, 1, 2, 3, 8, 30
# type -> (elements per block, bytes per block)
GGML_BLOCKS = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_Q4_0: (32, 18), GGML_Q4_1: (32, 20),
               GGML_Q8_0: (32, 34), GGML_BF16: (1, 2)}


class GGUFFile:
    """A GGUF v2/v3 file: `metadata` (key -> value), `tensors` (name -> (shape, type, offset)).

    `shape` is numpy order (outermost first), i.e. GGUF's ne[] reversed: a weight applied as
    x @ W.T has shape (out_features, in_features)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            self._buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._pos = 0
        magic = self._buf[:4]
        if magic != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        self._pos = 4
        self.version = self._read("<I")
        if self.version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {self.version} not supported")
        n_tensors, n_kv = self._read("<Q"), self._read("<Q")
        self.metadata: dict[str, object] = {}
        for _ in range(n_kv):
            key = self._string()
            self.metadata[key] = self._value(self._read("<I"))
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            dims = [self._read("<Q") for _ in range(self._read("<I"))]
            ggml_type, offset = self._read("<I"), self._read("<Q")
            infos.append((name, tuple(reversed(dims)), ggml_type, offset))
        alignment = int(self.metadata.get("general.alignment", 32))
        self.data_start = (self._pos + alignment - 1) // alignment * alignment
        self.tensors = {name: (shape, t, self.data_start + off) for name, shape, t, off in infos}

    def _read(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self._buf, self._pos)
        self._pos += struct.calcsize(fmt)
        return value

    def _string(self) -> str:
        n = self._read("<Q")
        s = self._buf[self._pos:self._pos + n].decode("utf-8", errors="replace")
        self._pos += n
        return s

    def _value(self, t: int):
        if t in GGUF_SCALARS:
            return self._read(GGUF_SCALARS[t])
        if t == 8:
            return self._string()
        if t == 9:
            elem, n = self._read("<I"), self._read("<Q")
            if elem in GGUF_SCALARS:  # numeric arrays: skip through in one step
                size = struct.calcsize(GGUF_SCALARS[elem])
                values = struct.unpack_from(f"<{n}{GGUF_SCALARS[elem][1]}", self._buf, self._pos)
                self._pos += n * size
                return list(values)
            return [self._value(elem) for _ in range(n)]
        raise ValueError(f"unknown GGUF value type {t}")

    def llama_config(self) -> dict:
        m = self.metadata
        arch = m.get("general.architecture", "llama")
        emb_shape = self.tensors["token_embd.weight"][0]
        dim = int(m[f"{arch}.embedding_length"])
        heads = int(m[f"{arch}.attention.head_count"])
        return {
            "layers": int(m[f"{arch}.block_count"]),
            "dim": dim,
            "heads": heads,
            "kv_heads": int(m.get(f"{arch}.attention.head_count_kv", heads)),
            "head_dim": int(m.get(f"{arch}.rope.dimension_count", dim // heads)),
            "ffn_dim": int(m[f"{arch}.feed_forward_length"]),
            "vocab": int(emb_shape[0]),
            "norm_eps": float(m.get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
            "rope_base": float(m.get(f"{arch}.rope.freq_base", 10000.0)),
            "tied_output": "output.weight" not in self.tensors,
        }

    def raw(self, name: str):
        """The tensor's bytes as a read-only numpy uint8 view of the mapped file."""
        import numpy as np
        shape, t, offset = self.tensors[name]
        per_block, block_bytes = GGML_BLOCKS[t]
        n = math.prod(shape)
        return np.frombuffer(self._buf, dtype=np.uint8, count=n // per_block * block_bytes, offset=offset)

    def dequantize(self, name: str):
        """The tensor as a new float32 numpy array of `shape`."""
        import numpy as np
        shape, t, _ = self.tensors[name]
        raw = self.raw(name)
        if t == GGML_F32:
            out = raw.view(np.float32).copy()
        elif t == GGML_F16:
            out = raw.view(np.float16).astype(np.float32)
        elif t == GGML_BF16:
            out = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif t == GGML_Q8_0:  # block: f16 d, int8 q[32]; x = q * d
            blocks = raw.reshape(-1, 34)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
            out = blocks[:, 2:].view(np.int8).astype(np.float32)
            out *= d
        elif t in (GGML_Q4_0, GGML_Q4_1):
            # Q4_1 block: f16 d, f16 m, 16 bytes; element j < 16 is the low nibble of byte j,
            # j >= 16 the high nibble of byte j - 16; x = q * d + m. Q4_0: f16 d; x = (q - 8) * d.
            head = 4 if t == GGML_Q4_1 else 2
            blocks = raw.reshape(-1, head + 16)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
            q = blocks[:, head:]
            out = np.empty((blocks.shape[0], 32), dtype=np.float32)
            out[:, :16] = q & 0x0F
            out[:, 16:] = q >> 4
            if t == GGML_Q4_1:
                out *= d
                out += blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
            else:
                out -= 8
                out *= d
        else:
            raise ValueError(f"{name}: GGML type {t} not supported")
        return out.reshape(shape)

    def close(self) -> None:
        try:
            self._buf.close()
        except BufferError:  # a numpy view of the mapping is still alive; the GC unmaps it later
            pass


def gemm_flops_per_token(cfg: dict, head: bool) -> int:
    """2 x multiply-accumulates per token of the projections (and the output head if `head`),
    as Sculpt's LlamaConfiguration.macsPerToken counts them."""
    kv_dim = cfg["kv_heads"] * cfg["head_dim"]
    d, f = cfg["dim"], cfg["ffn_dim"]
    macs = cfg["layers"] * (2 * d * d + 2 * kv_dim * d + 3 * d * f)
    return 2 * (macs + (cfg["vocab"] * d if head else 0))


def vm_hwm_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_seconds(body, runs: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        body()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def prefill_ids(n: int, vocab: int) -> list[int]:
    """Deterministic pseudo-random token ids (the same for every engine)."""
    state, ids = 2, []
    for _ in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        ids.append((state >> 33) % vocab)
    return ids


# ---------------------------------------------------------------------------------------------
# PyTorch worker
# ---------------------------------------------------------------------------------------------


def build_torch_llama(model_path: Path, max_pos: int):
    """Loads the GGUF into float32 torch tensors; returns a namespace with forward(ids, pos0,
    last_only, cache) -> logits, new_cache(capacity), cfg, load_seconds, and checks."""
    import types
    import torch
    import torch.nn.functional as F

    load_start = time.perf_counter()
    gguf = GGUFFile(model_path)
    cfg = gguf.llama_config()
    L, D, H, KV, HD, FF, V = (cfg[k] for k in ("layers", "dim", "heads", "kv_heads", "head_dim", "ffn_dim", "vocab"))
    kv_dim = KV * HD
    eps = cfg["norm_eps"]

    def tensor(name: str) -> "torch.Tensor":
        return torch.from_numpy(gguf.dequantize(name))

    def unpermute(w: "torch.Tensor", n_head: int) -> "torch.Tensor":
        # llama.cpp's converter: gguf = hf.reshape(n_head, 2, hd/2, in).swapaxes(1, 2); invert it.
        return w.reshape(n_head, HD // 2, 2, w.shape[-1]).transpose(1, 2).reshape(w.shape)

    embed = tensor("token_embd.weight")
    output = embed if cfg["tied_output"] else tensor("output.weight")
    layers = []
    for i in range(L):
        p = f"blk.{i}."
        wqkv = torch.empty(D + 2 * kv_dim, D)
        wqkv[:D] = unpermute(tensor(p + "attn_q.weight"), H)
        wqkv[D:D + kv_dim] = unpermute(tensor(p + "attn_k.weight"), KV)
        wqkv[D + kv_dim:] = tensor(p + "attn_v.weight")
        wgu = torch.empty(2 * FF, D)
        wgu[:FF] = tensor(p + "ffn_gate.weight")
        wgu[FF:] = tensor(p + "ffn_up.weight")
        layers.append((tensor(p + "attn_norm.weight"), wqkv, tensor(p + "attn_output.weight"),
                       tensor(p + "ffn_norm.weight"), wgu, tensor(p + "ffn_down.weight")))
    out_norm = tensor("output_norm.weight")

    gguf.close()
    load_seconds = time.perf_counter() - load_start

    inv_freq = cfg["rope_base"] ** (-torch.arange(0, HD, 2, dtype=torch.float64) / HD)
    angles = torch.arange(max_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos_table = torch.cat([angles.cos(), angles.cos()], dim=-1).float()  # [max_pos, HD]
    sin_table = torch.cat([angles.sin(), angles.sin()], dim=-1).float()

    if hasattr(F, "rms_norm"):
        def rms(x, w):
            return F.rms_norm(x, (D,), w, eps)
    else:
        def rms(x, w):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def rope(x, cos, sin):  # x: [heads, T, HD]; HF rotate_half on un-permuted rows
        x1, x2 = x[..., :HD // 2], x[..., HD // 2:]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    try:  # enable_gqa: torch >= 2.5
        F.scaled_dot_product_attention(torch.zeros(1, 2, 1, 4), torch.zeros(1, 1, 1, 4), torch.zeros(1, 1, 1, 4),
                                       enable_gqa=True)
        gqa_native = True
    except (TypeError, RuntimeError):
        gqa_native = False

    def attention(q, k, v, causal):
        # 4-D [1, heads, T, HD] so that the CPU flash-attention kernel takes it (3-D inputs, or
        # GQA in 3-D, fall back to the much slower math path: 2-8x here at T = 512).
        if not gqa_native:
            k = k.repeat_interleave(H // KV, dim=0)
            v = v.repeat_interleave(H // KV, dim=0)
        extra = {"enable_gqa": True} if gqa_native else {}
        return F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=causal, **extra)[0]

    def forward(ids, pos0=0, last_only=False, cache=None):
        """Logits [T or 1, V] for token ids [T] at positions pos0..pos0+T-1."""
        T = ids.shape[0]
        assert pos0 == 0 or T == 1, "is_causal is top-left aligned: prefill from 0, then 1 token at a time"
        x = embed[ids]
        cos, sin = cos_table[pos0:pos0 + T], sin_table[pos0:pos0 + T]
        for i, (attn_norm, wqkv, wo, ffn_norm, wgu, wdown) in enumerate(layers):
            qkv = F.linear(rms(x, attn_norm), wqkv)
            q, k, v = qkv.split([D, kv_dim, kv_dim], dim=-1)
            q = rope(q.view(T, H, HD).transpose(0, 1), cos, sin)
            k = rope(k.view(T, KV, HD).transpose(0, 1), cos, sin)
            v = v.view(T, KV, HD).transpose(0, 1)
            if cache is not None:
                kc, vc = cache
                kc[i, :, pos0:pos0 + T] = k
                vc[i, :, pos0:pos0 + T] = v
                k, v = kc[i, :, :pos0 + T], vc[i, :, :pos0 + T]
            o = attention(q, k, v, causal=T > 1)
            x = x + F.linear(o.transpose(0, 1).reshape(T, D), wo)
            gate, up = F.linear(rms(x, ffn_norm), wgu).split([FF, FF], dim=-1)
            x = x + F.linear(F.silu(gate) * up, wdown)
        if last_only:
            x = x[-1:]
        return F.linear(rms(x, out_norm), output)

    def new_cache(capacity):
        return torch.zeros(L, KV, capacity, HD), torch.zeros(L, KV, capacity, HD)

    return types.SimpleNamespace(forward=forward, new_cache=new_cache, cfg=cfg, load_seconds=load_seconds,
                                 gqa_native=gqa_native)


def torch_worker(args) -> dict:
    try:
        import torch
    except ImportError as error:
        return {"status": "not installed", "detail": str(error)}
    torch.set_num_threads(args.threads)
    model = build_torch_llama(args.model, max(args.prefill, len(CHECK_PROMPT) + args.generate) + 1)
    forward, new_cache, V = model.forward, model.new_cache, model.cfg["vocab"]

    result = {"status": "ok", "torch_version": torch.__version__, "threads": torch.get_num_threads(),
              "load_seconds": model.load_seconds, "gqa_native_sdpa": model.gqa_native, "config": model.cfg}

    with torch.inference_mode():
        # Correctness: next-token logits after the check prompt (no BOS).
        logits = forward(torch.tensor(CHECK_PROMPT), last_only=True)[-1]
        top = torch.topk(logits, 5)
        ids5 = top.indices.tolist()
        vals5 = [round(v, 4) for v in top.values.tolist()]
        lse = float(torch.logsumexp(logits.double(), dim=-1))
        ref_by_id = dict(zip(CHECK_TOP5_IDS, CHECK_TOP5_LOGITS))
        result["check"] = {
            "top5_ids": ids5, "top5_logits": vals5, "logsumexp": round(lse, 4),
            "ids_match": ids5 == CHECK_TOP5_IDS,
            "max_abs_diff_logits": max(abs(float(logits[i]) - v) for i, v in ref_by_id.items()),
            "abs_diff_logsumexp": abs(lse - CHECK_LOGSUMEXP),
        }

        ids = torch.tensor(prefill_ids(args.prefill, V))
        for scope, last in (("all", False), ("last", True)):
            seconds, times = median_seconds(lambda: forward(ids, last_only=last), args.runs)
            result[f"prefill_tokens_per_second_{scope}_logits"] = args.prefill / seconds
            result[f"prefill_seconds_{scope}_logits"] = times

        prompt = torch.tensor(CHECK_PROMPT)

        def generate(n):
            cache = new_cache(len(CHECK_PROMPT) + n)
            logits = forward(prompt, last_only=True, cache=cache)
            tokens = []
            start = time.perf_counter()
            for j in range(n):
                token = int(torch.argmax(logits[-1]))
                tokens.append(token)
                logits = forward(torch.tensor([token]), pos0=len(CHECK_PROMPT) + j, last_only=True, cache=cache)
            return time.perf_counter() - start, tokens

        generate(4)  # warm-up
        runs = [generate(args.generate) for _ in range(args.runs)]
        seconds = statistics.median(s for s, _ in runs)
        result["generation_tokens_per_second"] = args.generate / seconds
        result["generation_seconds"] = [s for s, _ in runs]
        result["generated_ids"] = runs[0][1]
    result["max_resident_mb"] = vm_hwm_mb()
    return result


def dequantization_check(model_path: Path):
    """Max |difference| between this file's numpy dequantization and gguf.quants.dequantize on
    tensors of each type (Q8_0, Q4_1, F32). Runs in a worker of its own so that its arrays
    count in no engine's peak RSS."""
    try:
        import numpy as np
        from gguf import GGUFReader
        from gguf.quants import dequantize as gguf_dequantize
    except ImportError as error:
        return {"status": "not installed", "detail": str(error)}
    ours, reader = GGUFFile(model_path), GGUFReader(str(model_path))
    diffs = {}
    for t in reader.tensors:
        if t.name in ("token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output_norm.weight"):
            ref = np.asarray(gguf_dequantize(t.data, t.tensor_type), dtype=np.float32)
            mine = ours.dequantize(t.name)
            diffs[t.name] = float(np.max(np.abs(ref.reshape(mine.shape) - mine)))
    del reader
    ours.close()
    return {"status": "ok", "max_abs_diff": diffs}


# ---------------------------------------------------------------------------------------------
# llama.cpp worker (llama-cpp-python's low-level bindings)
# ---------------------------------------------------------------------------------------------


def llama_worker(args) -> dict:
    try:
        import ctypes
        import numpy as np
        import llama_cpp as lc
    except ImportError as error:
        return {"status": "not installed", "detail": str(error)}

    if not args.llama_verbose:  # llama.cpp logs every load to stderr; keep only errors
        @lc.llama_log_callback
        def quiet(level, text, user_data):
            if level == 4:  # GGML_LOG_LEVEL_ERROR
                sys.stderr.write(text.decode("utf-8", errors="replace"))
        lc.llama_log_set(quiet, ctypes.c_void_p(0))
        llama_worker._log_callback = quiet  # keep it alive

    lc.llama_backend_init()
    n = args.prefill
    load_start = time.perf_counter()
    mparams = lc.llama_model_default_params()
    mparams.n_gpu_layers = 0
    model = lc.llama_model_load_from_file(str(args.model).encode(), mparams)
    if not model:
        return {"status": "error", "detail": "llama_model_load_from_file failed"}
    vocab = lc.llama_model_get_vocab(model)
    n_vocab = lc.llama_vocab_n_tokens(vocab)
    cparams = lc.llama_context_default_params()
    cparams.n_ctx = max(n, len(CHECK_PROMPT) + args.generate) + 16
    cparams.n_batch = cparams.n_ubatch = n
    cparams.n_threads = cparams.n_threads_batch = args.threads
    cparams.no_perf = False
    ctx = lc.llama_init_from_model(model, cparams)
    if not ctx:
        return {"status": "error", "detail": "llama_init_from_model failed"}
    load_seconds = time.perf_counter() - load_start
    memory = lc.llama_get_memory(ctx)
    batch = lc.llama_batch_init(n, 0, 1)

    def decode(tokens, pos0, logits="last"):
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = logits == "all" or i == len(tokens) - 1
        status = lc.llama_decode(ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")

    def last_logits():
        return np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))

    result = {"status": "ok", "llama_cpp_python_version": getattr(lc, "__version__", "?"),
              "threads": args.threads, "load_seconds": load_seconds,
              "system_info": lc.llama_print_system_info().decode(errors="replace").strip()}

    lc.llama_memory_clear(memory, True)
    decode(CHECK_PROMPT, 0)
    logits = last_logits().astype(np.float64)
    top = np.argsort(-logits)[:5]
    lse = float(np.log(np.sum(np.exp(logits - logits.max()))) + logits.max())
    result["check"] = {"top5_ids": [int(i) for i in top], "top5_logits": [round(float(logits[i]), 4) for i in top],
                       "logsumexp": round(lse, 4)}

    ids = prefill_ids(n, n_vocab)
    for scope in ("all", "last"):
        def prefill():
            lc.llama_memory_clear(memory, True)  # empty KV cache: nothing of the last run is reused
            decode(ids, 0, logits=scope)
            lc.llama_synchronize(ctx)
        seconds, times = median_seconds(prefill, args.runs)
        result[f"prefill_tokens_per_second_{scope}_logits"] = n / seconds
        result[f"prefill_seconds_{scope}_logits"] = times

    def generate(count):
        lc.llama_memory_clear(memory, True)
        decode(CHECK_PROMPT, 0)
        tokens = []
        start = time.perf_counter()
        for j in range(count):
            token = int(np.argmax(last_logits()))
            tokens.append(token)
            decode([token], len(CHECK_PROMPT) + j)
        lc.llama_synchronize(ctx)
        return time.perf_counter() - start, tokens

    generate(4)  # warm-up
    runs = [generate(args.generate) for _ in range(args.runs)]
    result["generation_tokens_per_second"] = args.generate / statistics.median(s for s, _ in runs)
    result["generation_seconds"] = [s for s, _ in runs]
    result["generated_ids"] = runs[0][1]
    result["max_resident_mb"] = vm_hwm_mb()
    lc.llama_batch_free(batch)
    lc.llama_free(ctx)
    lc.llama_model_free(model)
    return result


# ---------------------------------------------------------------------------------------------
# Parent: run each engine in its own process, then the table
# ---------------------------------------------------------------------------------------------


def run_process(cmd: list[str], timeout: float) -> dict:
    """Runs cmd; returns exit code, output, wall seconds and the child's ru_maxrss (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        except OSError as error:
            return {"returncode": None, "stdout": "", "stderr": str(error), "wall_seconds": 0.0, "ru_maxrss_mb": None}
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
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return {"returncode": proc.returncode, "timed_out": timed_out,
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace"),
                "wall_seconds": wall, "ru_maxrss_mb": usage.ru_maxrss / 1024,
                "cpu_seconds": usage.ru_utime + usage.ru_stime}


def cpu_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot, all cores (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except OSError:
        return float("nan")
    user, nice, system, idle, iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait: float, threshold: float = 0.3, window: float = 3.0) -> tuple[float, float]:
    """Waits (up to max_wait s) for a window in which other processes use < threshold cores.
    Returns (seconds waited, cores busy in the last window)."""
    start = time.perf_counter()
    while True:
        before = cpu_busy_seconds()
        time.sleep(window)
        busy = (cpu_busy_seconds() - before) / window
        waited = time.perf_counter() - start
        if busy < threshold or waited >= max_wait:
            return waited, busy


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_sculpt_bench(args, bench_args: list) -> dict:
    """Runs `sculpt-kernel bench …` and returns the JSON it prints, with the run's wall time,
    peak RSS and CPU seconds; or a status that says why there is none."""
    binary = Path(args.sculpt_kernel)
    if not binary.exists():
        return {"status": "not built", "detail": f"{binary} does not exist (swift build -c release)"}
    cmd = [str(binary), "bench", "--model", str(args.model)] + bench_args
    proc = run_process(cmd, args.timeout)
    text = proc["stdout"]
    if proc["returncode"] != 0 or "{" not in text:
        return {"status": "error", "command": cmd, "returncode": proc["returncode"],
                "detail": tail(proc["stderr"] or text), "cpu_seconds": proc.get("cpu_seconds", 0.0)}
    result = json.loads(text[text.index("{"):text.rindex("}") + 1])
    result.update(status="ok", command=cmd, wall_seconds=proc["wall_seconds"], ru_maxrss_mb=proc["ru_maxrss_mb"],
                  cpu_seconds=proc["cpu_seconds"],
                  binary_modified=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(binary.stat().st_mtime)))
    return result


def run_sculpt(args) -> dict:
    return run_sculpt_bench(args, ["--prefill", str(args.prefill), "--generate", str(args.generate), "--runs", str(args.runs)])


def run_worker(engine: str, args) -> dict:
    cmd = [args.python, str(Path(__file__).resolve()), "--worker", engine, "--model", str(args.model),
           "--prefill", str(args.prefill), "--generate", str(args.generate), "--runs", str(args.runs),
           "--threads", str(args.threads)] + (["--llama-verbose"] if args.llama_verbose else [])
    proc = run_process(cmd, args.timeout)
    lines = [line for line in proc["stdout"].splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        return {"status": "error", "command": cmd, "returncode": proc["returncode"],
                "timed_out": proc.get("timed_out"), "detail": tail(proc["stderr"] or proc["stdout"])}
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result.update(command=cmd, wall_seconds=proc["wall_seconds"], ru_maxrss_mb=proc["ru_maxrss_mb"],
                  cpu_seconds=proc["cpu_seconds"])
    if args.llama_verbose and proc["stderr"]:
        sys.stderr.write(proc["stderr"])
    return result


def fmt(value, spec: str = ".0f") -> str:
    return "—" if value is None else format(value, spec)


def build_table(results: dict, cfg: dict, prefill: int, generate: int) -> tuple[str, dict]:
    def figure(engine, key):
        r = results.get(engine, {})
        return r.get(key) if r.get("status") == "ok" else None

    gemm = figure("sculpt", "gemm_gflops")
    bound_all = figure("sculpt", "gemm_bound_tokens_per_second")
    bound_last = gemm * 1e9 / gemm_flops_per_token(cfg, head=False) if gemm and cfg else None
    bounds = {"all": bound_all, "last": bound_last}

    rows = [
        (f"prefill {prefill} tok/s (all logits)", "prefill_tokens_per_second_all_logits", "all"),
        (f"prefill {prefill} tok/s (last logit)", "prefill_tokens_per_second_last_logits", "last"),
        (f"generation tok/s ({generate} tokens)", "generation_tokens_per_second", None),
        ("peak RSS MB", "max_resident_mb", None),
    ]
    header = ["", "Sculpt", "PyTorch", "llama.cpp", "Sculpt/PyTorch", "Sculpt/GEMM-bound", "target"]
    # Speeds measured while other processes used more than DISTURBED_CORES are starred (peak
    # RSS does not depend on it).
    disturbed = {e for e in ENGINES if results.get(e, {}).get("others_cpu_cores_during_run", 0) > DISTURBED_CORES}
    table, verdicts = [], {"disturbed_engines": sorted(disturbed)}
    for label, key, scope in rows:
        speed = key != "max_resident_mb"
        star = {e: "*" if speed and e in disturbed else "" for e in ENGINES}
        s, t, l = (figure(e, key) for e in ENGINES)
        cells = [label]
        for engine, value in zip(ENGINES, (s, t, l)):
            status = results.get(engine, {}).get("status", "skipped")
            cells.append(fmt(value) + star[engine] if value is not None else status)
        cells.append(f"{s / t:.2f}x" if s and t else "—")
        bound = bounds.get(scope) if scope else None
        cells.append(f"{s / bound:.0%}" if s and bound else "—")
        if scope:
            above = (s > t) if s and t else None
            gemm_ok = (s >= TARGET_GEMM_FRACTION * bound) if s and bound else None
            verdicts[key] = {"above_pytorch": above, "at_least_75pct_of_gemm_bound": gemm_ok}
            cells.append(f"> PyTorch: {verdict(above)}{star['sculpt'] or star['torch']}; "
                         f">= {TARGET_GEMM_FRACTION:.0%} bound: {verdict(gemm_ok)}{star['sculpt']}")
        elif key == "max_resident_mb":
            ok = (s <= t) if s and t else None
            verdicts[key] = {"at_most_pytorch": ok}
            cells.append(f"<= PyTorch: {verdict(ok)}")
        else:
            cells.append("")
        table.append(cells)

    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 or i == len(header) - 1 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in [header] + table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines), {"bounds_tokens_per_second": bounds, "targets": verdicts}


def verdict(ok) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def print_check(results: dict) -> None:
    print(f"\nCorrectness: next token after {CHECK_PROMPT} (\"The capital of France is\", no BOS)")
    print(f"  reference  top-5 ids {CHECK_TOP5_IDS}  logits {CHECK_TOP5_LOGITS}  logsumexp {CHECK_LOGSUMEXP}")
    for engine in ("torch", "llama.cpp"):
        check = results.get(engine, {}).get("check")
        if not check:
            continue
        line = f"  {COLUMN[engine]:<10} top-5 ids {check['top5_ids']}  logits {check['top5_logits']}  logsumexp {check['logsumexp']}"
        print(line)
        if engine == "torch":
            print(f"             ids match: {check['ids_match']}; max |logit diff| on the reference ids "
                  f"{check['max_abs_diff_logits']:.2e}; |logsumexp diff| {check['abs_diff_logsumexp']:.2e}")
        else:
            ref = dict(zip(CHECK_TOP5_IDS, CHECK_TOP5_LOGITS))
            diffs = [abs(v - ref[i]) for i, v in zip(check["top5_ids"], check["top5_logits"]) if i in ref]
            print(f"             ids match: {check['top5_ids'] == CHECK_TOP5_IDS}; max |logit diff| on shared ids "
                  f"{fmt(max(diffs) if diffs else None, '.2e')} (its Q4_1/Q8_0 dot products quantize activations to 8 bits)")
    dq = results.get("torch", {}).get("dequant_max_abs_diff_vs_gguf_package")
    if dq:
        print("  numpy dequantization vs gguf.quants.dequantize, max |diff|: "
              + ", ".join(f"{k} {v:.1e}" for k, v in dq.items()))


def run_with_attempts(label: str, run, args) -> dict:
    """Runs an engine (`run()` returns its result dict) up to --attempts times while other
    processes disturbed it by more than --quiet-cores; keeps the least disturbed attempt."""
    attempts = []
    for _ in range(max(1, args.attempts)):
        if args.wait_quiet > 0:
            waited, busy = wait_for_quiet(args.wait_quiet)
            print(f"  waited {waited:.0f} s for a quiet machine (other processes: {busy:.2f} cores)")
        print(f"  running {label} ...", end="", flush=True)
        busy_before, start = cpu_busy_seconds(), time.perf_counter()
        r = run()
        wall = time.perf_counter() - start
        # Cores used by everything else on the machine while the engine ran: how much the
        # figures were disturbed (the engine itself uses up to --threads cores).
        others = max(0.0, (cpu_busy_seconds() - busy_before - r.get("cpu_seconds", 0.0)) / wall)
        r["others_cpu_cores_during_run"] = others
        attempts.append(r)
        print(f" {r['status']} in {wall:.0f} s (other processes used {others:.2f} cores meanwhile)"
              + (f": {r['detail']}" if r["status"] != "ok" and r.get("detail") else ""))
        if r["status"] != "ok" or others <= args.quiet_cores:
            break
    r = min(attempts, key=lambda a: (a["status"] != "ok", a["others_cpu_cores_during_run"]))
    r["attempts_others_cpu_cores"] = [a["others_cpu_cores_during_run"] for a in attempts]
    return r


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every side-by-side benchmark shares: time limit, JSON output, waiting for quiet."""
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per engine (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each engine, wait up to SECONDS for other processes to use < 0.3 cores")
    parser.add_argument("--attempts", type=int, default=1,
                        help="run an engine up to this many times while other processes used more than "
                             "--quiet-cores during its run; the least disturbed attempt is kept (default: %(default)s)")
    parser.add_argument("--quiet-cores", type=float, default=0.1,
                        help="disturbance accepted without another attempt, in cores (default: %(default)s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="GGUF model (default: %(default)s)")
    parser.add_argument("--sculpt-kernel", default=os.environ.get("SCULPT_KERNEL", str(DEFAULT_SCULPT)),
                        help="Sculpt release binary (default: $SCULPT_KERNEL or %(default)s)")
    parser.add_argument("--python", default=None,
                        help="Python for the PyTorch and llama.cpp workers (default: $SCULPT_BENCH_PYTHON, "
                             f"else {BENCH_VENV_PYTHON} if it exists, else this Python)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of %(default)s")
    parser.add_argument("--prefill", type=int, default=512, help="prompt tokens for prefill (default: %(default)s)")
    parser.add_argument("--generate", type=int, default=64, help="tokens to generate (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs, median reported (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads for PyTorch and llama.cpp (default: %(default)s)")
    add_run_options(parser)
    parser.add_argument("--llama-verbose", action="store_true", help="pass llama.cpp's log through to stderr")
    parser.add_argument("--worker", choices=("torch", "llama.cpp", "dequant-check"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        try:
            if args.worker == "dequant-check":
                result = dequantization_check(args.model)
            else:
                result = (torch_worker if args.worker == "torch" else llama_worker)(args)
        except Exception as error:  # reported to the parent, which carries on with the other engines
            import traceback
            traceback.print_exc()
            result = {"status": "error", "detail": f"{type(error).__name__}: {error}"}
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; choose from {ENGINES}")
    if args.python is None:
        args.python = os.environ.get("SCULPT_BENCH_PYTHON") or (
            str(BENCH_VENV_PYTHON) if BENCH_VENV_PYTHON.exists() else sys.executable)
    if not args.model.exists():
        print(f"model not found: {args.model} (scripts/fetch_data.py fetches it)", file=sys.stderr)
        return 2
    gguf = GGUFFile(args.model)
    cfg = gguf.llama_config()
    gguf.close()

    print(f"Engine throughput: {args.model.name}, prefill {args.prefill} tokens, generate {args.generate}, "
          f"median of {args.runs} after a warm-up, {args.threads} threads, {os.cpu_count()} CPUs")
    print(f"  model: {cfg['layers']} layers, dim {cfg['dim']}, {cfg['heads']} heads / {cfg['kv_heads']} KV, "
          f"head_dim {cfg['head_dim']}, FFN {cfg['ffn_dim']}, vocab {cfg['vocab']}, rope base {cfg['rope_base']:g}, "
          f"eps {cfg['norm_eps']:g}, tied output {cfg['tied_output']}")
    print(f"  workers' Python: {args.python}")
    results: dict[str, dict] = {}
    for engine in ENGINES:
        if engine not in engines:
            results[engine] = {"status": "skipped"}
            continue
        r = run_with_attempts(COLUMN[engine], lambda: run_sculpt(args) if engine == "sculpt" else run_worker(engine, args), args)
        results[engine] = r

    if results["torch"].get("status") == "ok":  # the numpy dequantization against the gguf package
        check = run_worker("dequant-check", args)
        if check.get("status") == "ok":
            results["torch"]["dequant_max_abs_diff_vs_gguf_package"] = check["max_abs_diff"]

    table, summary = build_table(results, cfg, args.prefill, args.generate)
    s = results["sculpt"]
    print()
    if s.get("status") == "ok":
        print(f"OpenBLAS SGEMM at the model's shapes ({args.prefill} rows): {s['gemm_gflops']:.1f} GFLOP/s "
              f"(Sculpt bench) -> GEMM-bound prefill limit {s['gemm_bound_tokens_per_second']:.0f} tok/s with all "
              f"logits, {fmt(summary['bounds_tokens_per_second']['last'])} tok/s with the last logit only")
        print(f"Sculpt {args.sculpt_kernel} (built {s['binary_modified']}): load {s.get('load_seconds', 0):.2f} s; "
              f"peak RSS {s['max_resident_mb']:.0f} MB (wait4 ru_maxrss {fmt(s.get('ru_maxrss_mb'))} MB)")
    t, l = results["torch"], results["llama.cpp"]
    if t.get("status") == "ok":
        print(f"PyTorch {t['torch_version']}, {t['threads']} threads, load+dequantize {t['load_seconds']:.1f} s")
    if l.get("status") == "ok":
        print(f"llama-cpp-python {l['llama_cpp_python_version']}, {l['threads']} threads, load {l['load_seconds']:.2f} s")
    print()
    print(table)
    b = summary["bounds_tokens_per_second"]
    if b["all"]:
        print(f"Sculpt/GEMM-bound: all logits against {b['all']:.0f} tok/s (Sculpt's gemm_bound_tokens_per_second), "
              f"last logit against {fmt(b['last'])} tok/s (same SGEMM rate, output head once per sequence)")
    disturbed = [f"{COLUMN[e]} {results[e]['others_cpu_cores_during_run']:.2f}" for e in ENGINES
                 if results[e].get("status") == "ok"]
    if disturbed:
        print(f"Other processes' CPU use while each engine ran (cores of {os.cpu_count()}): {', '.join(disturbed)}"
              " -- figures are comparable only when these are near 0")
    if summary["targets"]["disturbed_engines"]:
        print(f"* measured while other processes used more than {DISTURBED_CORES} cores: not comparable, run again")
    print_check(results)
    for engine in ENGINES:
        r = results[engine]
        if r.get("status") not in ("ok", "skipped", "not installed"):
            print(f"\n{COLUMN[engine]}: {r['status']}" + (f" -- {r['detail']}" if r.get("detail") else ""))

    if args.json:
        payload = {
            "model": str(args.model), "config": cfg, "prefill_tokens": args.prefill, "generate_tokens": args.generate,
            "runs": args.runs, "threads": args.threads, "cpus": os.cpu_count(), "machine": platform.machine(),
            "engines": results, **summary,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
