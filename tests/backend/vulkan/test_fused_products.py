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
from op_checks import seed_of
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


# ---- q, k and v of a decode step rotated and stored by their own product (mul_mv_<type>_norm_rope)

ROPE_TYPES = [T.F16, T.Q4_0, T.Q8_0, T.Q4_K, T.Q6_K]
HEAD_DIM, N_HEAD, N_CTX = 38, 3, 10  # 114 rows: the last workgroup's run past the end
ROPE_CASES = {  # name: (rope dict, to_cache, f16)
    "q": ({"n_rot": HEAD_DIM, "freq_base": 10000.0}, False, False),
    "k f16 cache, partial": ({"n_rot": 24, "freq_base": 1e6, "attn_factor": 0.9}, True, True),
    "k f32 cache": ({"n_rot": HEAD_DIM, "freq_base": 500000.0, "freq_scale": 0.25}, True, False),
    "v f16 cache": (None, True, True),
}


def cpu_rope(y, pos, rope):
    from gpt4all_core.backend import cpu_kernels as ck
    out = y.astype(np.float32).reshape(len(pos), N_HEAD, HEAD_DIM).copy()
    ck.rope(out, np.asarray(pos, np.int32), mode="normal", **rope)
    return out.reshape(len(pos), -1).astype(np.float64)


@pytest.mark.parametrize("case", sorted(ROPE_CASES))
@pytest.mark.parametrize("ggml_type", ROPE_TYPES, ids=[t.name for t in ROPE_TYPES])
def test_norm_product_then_rope_and_store(vk, ggml_type, case):
    """Against float64 and the CPU's RoPE: each output within the product's bound carried through
    the rotation (|cos| + |sin| <= sqrt 2 times mscale) plus the angle's error, then the cache's
    rounding to halves; slots and columns it must not write stay NaN."""
    from gpt4all_core.backend.vulkan import ops
    rope, to_cache, f16 = ROPE_CASES[case]
    n_out = N_HEAD * HEAD_DIM
    rng = np.random.default_rng(seed_of("norm_rope", int(ggml_type), case))
    raw = cpu_kernels.quantize(rng.standard_normal((n_out, N_IN)).astype(np.float32), ggml_type)
    w = cpu_kernels.dequantize(raw, ggml_type).astype(np.float64)
    gamma = rng.uniform(0.5, 1.5, N_IN).astype(np.float32)
    n_rot, _, mscale = ops.rope_rotation(rope or {}, HEAD_DIM)
    target = products.RopeOut(HEAD_DIM, n_rot if rope else 0, to_cache, f16, mscale)
    freqs = ops.rope_freqs(rope or {}, HEAD_DIM)
    for cols, max_cols in ((1, 1), (3, 8)):
        x = (rng.standard_normal((max_cols, N_IN)) * 3).astype(np.float32)
        pos = rng.integers(0, 200_000, max_cols).astype(np.int32)
        slots = rng.permutation(N_CTX)[:max_cols].astype(np.int32)
        d = products.fused_product(vk.caps, int(ggml_type), n_out, N_IN, max_cols, EPS, rope=target)
        assert d.shader == f"mul_mv_{T(ggml_type).name.lower()}_norm_rope"
        words = N_CTX * n_out // (2 if f16 else 1) if to_cache else max_cols * n_out
        out_words = np.full(words, 0x7E007E00 if f16 else 0x7FC00000, np.uint32)
        params = make_params(max_cols, n_tokens=cols, pos=pos, slots=slots)
        (got,) = run_dispatch(vk, d, [products.REGISTRY[int(ggml_type)].pack(raw), x, out_words, gamma, freqs], [2],
                              params=params)
        xn = normalized(x[:cols], gamma)
        plain, bound = xn @ w.T, REL * (np.abs(xn) @ np.abs(w).T)
        ref = cpu_rope(plain, pos[:cols], rope) if rope else plain
        if rope:  # the product's error turned by the rotation, and the angle's (test_rope.py's bound)
            pair_max = np.maximum(bound, np.roll(bound, 1, axis=1))
            pair_max = np.maximum(pair_max, np.roll(bound, -1, axis=1))
            bound = np.sqrt(2) * mscale * pair_max + (4e-6 + 8 * 1.2e-7) * mscale * 2 * np.abs(plain).max()
        if to_cache:
            cache = got.view(np.float16 if f16 else np.float32).astype(np.float64).reshape(N_CTX, n_out)
            values = cache[slots[:cols]]
            if f16:
                bound = bound + 2.0 ** -11 * (np.abs(ref) + bound) + 2.0 ** -25
            unwritten = np.setdiff1d(np.arange(N_CTX), slots[:cols])
            assert np.isnan(cache[unwritten]).all()
        else:
            values = got.view(np.float32).astype(np.float64).reshape(max_cols, n_out)
            assert np.isnan(values[cols:]).all()
            values = values[:cols]
        err = np.abs(values - ref)
        assert np.all(err <= bound), (case, cols, err.max())


def test_rope_forms_refuse_what_they_cannot_rotate(vk):
    with pytest.raises(ValueError, match="whole heads"):
        products.fused_product(vk.caps, int(T.Q4_0), 100, 512, 1, EPS, rope=products.RopeOut(64, 64, False))
    with pytest.raises(ValueError, match="even head_dim"):
        products.fused_product(vk.caps, int(T.Q4_0), 99, 512, 1, EPS, rope=products.RopeOut(33, 32, False))
    with pytest.raises(ValueError, match="glu or rope"):
        products.fused_product(vk.caps, int(T.Q4_0), 128, 512, 1, EPS, "silu", products.RopeOut(64, 64, False))
    d = products.fused_product(vk.caps, int(T.Q4_0), 128, 512, 1, EPS, rope=products.RopeOut(64, 64, True))
    assert d.spec[1] % 2 == 0 and len(d.spec) == 13  # whole pairs a workgroup; ids 8-12 set
