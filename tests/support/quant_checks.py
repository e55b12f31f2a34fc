"""Shared by the quantized-kernel tests: random raw blocks and a matmul check against float64 numpy."""
from __future__ import annotations

import gguf as gguf_ref
import numpy as np
from gguf import quants as ref_quants

from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.gguf import TYPE_TRAITS, GGMLType

# where each type's fp16 fields sit in its block (random bytes there could be NaN or Inf)
FP16_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "IQ4_NL": [0],
               "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def random_blocks(name: str, n_rows: int, k: int, seed: int) -> np.ndarray:
    """Rows of random raw blocks whose fp16 scales are finite (other bytes all random)."""
    t = GGMLType[name]
    block_size, type_size = TYPE_TRAITS[t]
    rng = np.random.default_rng(seed)
    if name in ("F32", "F16", "BF16"):
        x = rng.standard_normal((n_rows, k)).astype(np.float32) * 3
        return ref_quants.quantize(x, gguf_ref.GGMLQuantizationType[name]).view(np.uint8)
    raw = rng.integers(0, 256, (n_rows, k // block_size, type_size), dtype=np.uint8)
    for off in FP16_FIELDS[name]:
        scale = (rng.standard_normal((n_rows, k // block_size)) * 0.05).astype(np.float16)
        raw[..., off:off + 2] = scale.view(np.uint8).reshape(n_rows, -1, 2)
    return raw.reshape(n_rows, -1)


def check_matmul(name: str, m: int, k: int, n: int, n_threads: int | None = None, seed: int = 0) -> np.ndarray:
    """matmul against float64 numpy, with bounds derived from the data:
    - against the exact product of the dequantized weights and the quantized-then-dequantized
      activations, only float32 summation error: 1e-5 of sum |w||x~|;
    - against the true float64 product, also the activation rounding: sum |w| |x - x~|."""
    raw = random_blocks(name, m, k, seed)
    x = np.random.default_rng(seed + 1).standard_normal((n, k)).astype(np.float32)
    w = ck.dequantize(raw, GGMLType[name]).astype(np.float64)
    info = ck.type_info(GGMLType[name])
    act = info["activation_type_id"]
    x_q = x if info["activation_type"] == "F32" else ck.dequantize(ck.quantize(x, act), act)
    y = ck.matmul(raw, GGMLType[name], x, n_threads=n_threads)
    assert y.shape == (n, m) and y.dtype == np.float32
    scale = np.abs(x_q.astype(np.float64)) @ np.abs(w).T
    assert (np.abs(y - x_q.astype(np.float64) @ w.T) <= 1e-5 * scale + 1e-6).all()
    rounding = np.abs(x.astype(np.float64) - x_q) @ np.abs(w).T
    assert (np.abs(y - x.astype(np.float64) @ w.T) <= rounding + 1e-5 * scale + 1e-6).all()
    return y
