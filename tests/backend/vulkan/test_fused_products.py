"""Decoding's fused matrix-vector forms (products.fused_product; mul_mv_<type>_norm and _norm_glu)
for every weight type, against float64: rms_norm(x) * gamma then the product, and act(gate) * up
of it with the gate and up matrices stacked. Outputs are poisoned: columns past the batch's count
must stay NaN.

Error bound. The normalization adds one float32 sum of n_in squares (relative error ~1e-7 here)
and its rsqrt to the product's own rounding (see test_products_32.py: within 1e-5 of |w|.|x|).
For act(g) * u the bound carries both errors through: |u| e_g |act'| + |act(g)| e_u, with
|silu'| and |gelu'| under 1.2.
"""
from __future__ import annotations

import numpy as np
import pytest
from vulkan_runs import poisoned

from gpt4all_core.backend import cpu_kernels
from gpt4all_core.backend.vulkan import products
from gpt4all_core.backend.vulkan.context import Dispatch, make_params, run_dispatch
from gpt4all_core.gguf.types import GGMLType as T

TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
N_IN = 512     # whole K-quant super-blocks
N_OUT = 37     # odd: the last workgroup's rows run past the end
EPS = 1e-5
REL = 1e-5


def silu(v):
    return v / (1 + np.exp(-v))


def gelu(v):  # the CPU's gk_gelu: the tanh form through one exp (overflowing to 0 for large -v)
    with np.errstate(over="ignore"):
        return v / (1 + np.exp(-(1.5957691216057308 * v + 1.5957691216057308 * 0.044715 * v ** 3)))


def quantized(ggml_type, n_out, seed):
    rng = np.random.default_rng(seed)
    raw = cpu_kernels.quantize(rng.standard_normal((n_out, N_IN)).astype(np.float32), ggml_type)
    return raw, cpu_kernels.dequantize(raw, ggml_type).astype(np.float64)


def run_fused(vk, ggml_type, raw, x, gamma, cols, glu=None):
    max_cols = x.shape[0]
    d = products.fused_product(vk.caps, int(ggml_type), N_OUT, N_IN, max_cols, EPS, glu)
    assert d.shader == f"mul_mv_{T(ggml_type).name.lower()}_norm" + ("_glu" if glu else "")
    params = make_params(max_cols, n_tokens=cols, n_logits=max_cols)
    words = products.REGISTRY[int(ggml_type)].pack(raw)
    return run_dispatch(vk, d, [words, x, poisoned(max_cols, N_OUT), gamma], [2], params=params)[0]


def normalized(x, gamma):
    x = x.astype(np.float64)
    return x / np.sqrt((x * x).mean(axis=1, keepdims=True) + EPS) * gamma


@pytest.mark.parametrize("ggml_type", TYPES, ids=[t.name for t in TYPES])
def test_norm_then_product(vk, ggml_type):
    raw, w = quantized(ggml_type, N_OUT, seed=1)
    rng = np.random.default_rng(2)
    gamma = rng.uniform(0.5, 1.5, N_IN).astype(np.float32)
    for cols, max_cols in ((1, 1), (3, 8)):
        x = (rng.standard_normal((max_cols, N_IN)) * 3).astype(np.float32)  # not unit scale: the norm matters
        out = run_fused(vk, ggml_type, raw, x, gamma, cols)
        xn = normalized(x[:cols], gamma)
        err = np.abs(out[:cols] - xn @ w.T)
        assert np.all(err <= REL * (np.abs(xn) @ np.abs(w).T)), err.max()
        assert np.isnan(out[cols:]).all()


@pytest.mark.parametrize("glu", ["silu", "gelu"])
@pytest.mark.parametrize("ggml_type", TYPES, ids=[t.name for t in TYPES])
def test_norm_then_gated_product(vk, ggml_type, glu):
    raw_g, wg = quantized(ggml_type, N_OUT, seed=3)
    raw_u, wu = quantized(ggml_type, N_OUT, seed=4)
    rng = np.random.default_rng(5)
    gamma = rng.uniform(0.5, 1.5, N_IN).astype(np.float32)
    act = silu if glu == "silu" else gelu
    for cols, max_cols in ((1, 1), (5, 8)):
        x = (rng.standard_normal((max_cols, N_IN)) * 0.5).astype(np.float32)
        out = run_fused(vk, ggml_type, np.concatenate([raw_g, raw_u]), x, gamma, cols, glu)
        xn = normalized(x[:cols], gamma)
        g, u = xn @ wg.T, xn @ wu.T
        eg, eu = REL * (np.abs(xn) @ np.abs(wg).T), REL * (np.abs(xn) @ np.abs(wu).T)
        err = np.abs(out[:cols] - act(g) * u)
        assert np.all(err <= 1.2 * np.abs(u) * eg + np.abs(act(g)) * eu + eg * eu), err.max()
        assert np.isnan(out[cols:]).all()


def test_prompt_batches_take_the_unfused_path(vk):
    """From mm's column count on, fused_product says no (a prompt's norm runs on its own)."""
    for ggml_type in (T.Q4_0, T.Q4_K):
        kernels = products.REGISTRY[int(ggml_type)]
        assert products.fused_product(vk.caps, int(ggml_type), 64, 512, kernels.mm_min_cols, EPS) is None
        assert products.fused_product(vk.caps, int(ggml_type), 64, 512, kernels.mm_min_cols - 1, EPS) is not None
    assert products.fused_product(vk.caps, int(T.F32), 64, 45, 1, EPS) is None  # not whole blocks
    with pytest.raises(ValueError, match="glu must be"):
        products.fused_product(vk.caps, int(T.Q4_0), 64, 512, 1, EPS, glu="relu")


def test_glu_split(vk):
    """The prompt path's act(gate) * up from one [cols, 2n] product output."""
    from gpt4all_core.backend.vulkan import ops
    rng = np.random.default_rng(6)
    n, max_cols, cols = 100, 4, 3
    gu = rng.standard_normal((max_cols, 2 * n)).astype(np.float32)
    for gelu_form, act in ((False, silu), (True, gelu)):
        d = ops.glu_split(vk.caps, n, ops.COLS_TOKENS, max_cols, gelu=gelu_form)
        (out,) = run_dispatch(vk, d, [poisoned(max_cols, n), gu], [0],
                              params=make_params(max_cols, n_tokens=cols))
        g, u = gu[:cols, :n].astype(np.float64), gu[:cols, n:].astype(np.float64)
        np.testing.assert_allclose(out[:cols], act(g) * u, rtol=1e-5, atol=1e-6)
        assert np.isnan(out[cols:]).all()
