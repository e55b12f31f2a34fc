"""The K-quant matrix products and get_rows on Vulkan (Q2_K .. Q6_K): each against float64 of the
CPU's dequantization (cpu_kernels.dequantize, which defines the values) times random float
activations; poisoned outputs show what was written.

Error bound, relative to sum_i |w_i x_i| (the scale of a dot product's rounding). The shaders
make each weight in float32 as fma(0.5 + q / 256, 256 s, o - 128 s) (s, o: the sub-block's scale
and offset, computed in float32 as the CPU computes them): exact but for two roundings, about
2^-24 * 130 |s|, i.e. ~1e-6 of a weight, which is rarely much below |s|. The sums are float32: mv
adds n_in / 64 terms per invocation then a tree; mm adds all n_in terms in one accumulator, whose
rounding errors (random in sign) grow like sqrt(n_in) * 2^-24 ~ 3e-6 at n_in = 2048. TOL = 1e-5
sits above both (measured on lavapipe: at most 2.5e-7), and below what one wrong quant among
n_in = 2048 weights does (a quant step is ~1/4 of a typical weight: ~1e-4).
"""
from __future__ import annotations

import numpy as np
import pytest

from gpt4all_core.backend import cpu_kernels
from gpt4all_core.backend.vulkan import products, types_k
from gpt4all_core.backend.vulkan.context import make_params, run_dispatch
from gpt4all_core.backend.vulkan.ops import COLS_LOGITS, COLS_TOKENS

TYPES = {t.name: t for t in types_k.K_TYPES}
TOL = 1e-5
N_OUT = 67  # odd: the last workgroup's rows run past the end


def quantized(name: str, n_out: int, n_in: int, std: float = 1.0, seed: int = 0):
    """Random weights quantized by the CPU: (raw GGUF rows, their float64 values)."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((n_out, n_in)) * std).astype(np.float32)
    raw = cpu_kernels.quantize(w, TYPES[name].ggml_type)
    return raw, cpu_kernels.dequantize(raw, TYPES[name].ggml_type).astype(np.float64)


def run_product(vk, dispatch, raw, name, x, y0, n_out, n_in, *, n_tokens, n_logits=0, col_source=COLS_TOKENS,
                accumulate=False):
    params = make_params(y0.shape[0], n_tokens=n_tokens, n_logits=n_logits)
    push = (n_out, n_in, col_source, int(accumulate))
    d = type(dispatch)(dispatch.shader, dispatch.groups, dispatch.spec, push)
    words = products.REGISTRY[TYPES[name].ggml_type].pack(raw)
    (y,) = run_dispatch(vk, d, [words, x, y0], [2], params=params)
    return y


def check_product(y, y0, w, x, n, accumulate):
    """Columns < n hold (y0 +) w x within TOL of sum |w x|; columns from n on are untouched."""
    expected = x[:n].astype(np.float64) @ w.T + (y0[:n] if accumulate else 0.0)
    scale = np.abs(x[:n].astype(np.float64)) @ np.abs(w).T + (np.abs(y0[:n]) if accumulate else 0.0)
    err = np.abs(y[:n] - expected) / scale
    assert np.all(np.isfinite(y[:n])) and err.max() < TOL, err.max()
    assert np.all(np.isnan(y[n:]))  # poisoned and never written


def activations_and_output(max_cols, n_in, n_out, n, accumulate, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((max_cols, n_in)).astype(np.float32)
    y0 = np.full((max_cols, n_out), np.nan, np.float32)
    if accumulate:
        y0[:n] = rng.standard_normal((n, n_out))
    return x, y0


# (columns, max_cols) of the mv shader: one token; a few in a bucket of 8; 8 in 8; 13 in 20 (z > 1)
MV_CASES = [(1, 1), (2, 8), (5, 8), (8, 8), (13, 20)]


@pytest.mark.parametrize("n_in", [256, 2048])
@pytest.mark.parametrize("name", sorted(TYPES))
def test_mv_matches_float64(vk, name, n_in):
    """Every column case over one quantized matrix; odd cases accumulate, and the 5-column case
    counts its columns as logits (n_tokens differs so that using it would show)."""
    raw, w = quantized(name, N_OUT, n_in)
    mv = products.REGISTRY[TYPES[name].ggml_type].mv
    for i, (n, max_cols) in enumerate(MV_CASES):
        accumulate = i % 2 == 1
        logits = n == 5
        x, y0 = activations_and_output(max_cols, n_in, N_OUT, n, accumulate, seed=i)
        y = run_product(vk, mv(vk.caps, N_OUT, n_in, max_cols), raw, name, x, y0, N_OUT, n_in,
                        n_tokens=max_cols if logits else n, n_logits=n if logits else 0,
                        col_source=COLS_LOGITS if logits else COLS_TOKENS, accumulate=accumulate)
        check_product(y, y0, w, x, n, accumulate)


@pytest.mark.parametrize("n_in", [256, 2048])
@pytest.mark.parametrize("name", sorted(TYPES))
def test_mm_matches_float64(vk, name, n_in):
    """37 columns of a 64-column bucket (a partial column tile) overwriting, 19 of a 32-column
    bucket (the narrower tile) accumulating, over 67 rows (a partial row tile)."""
    raw, w = quantized(name, N_OUT, n_in, seed=2)
    mm = products.REGISTRY[TYPES[name].ggml_type].mm
    for n, max_cols, accumulate in ((37, 64, False), (19, 32, True)):
        x, y0 = activations_and_output(max_cols, n_in, N_OUT, n, accumulate, seed=3)
        y = run_product(vk, mm(vk.caps, N_OUT, n_in, max_cols), raw, name, x, y0, N_OUT, n_in, n_tokens=n,
                        accumulate=accumulate)
        check_product(y, y0, w, x, n, accumulate)


@pytest.mark.parametrize("name", sorted(TYPES))
def test_real_model_scales_with_subnormal_halves(vk, name):
    """Weights of std 0.02 as in real models: Q6_K's d (and Q2_K/Q3_K/... small mins) fall below
    fp16's smallest normal 6.1e-5 in many blocks; the shaders must decode those halves exactly."""
    n_in = 512
    raw, w = quantized(name, N_OUT, n_in, std=0.02, seed=4)
    if name == "q6_k":
        d = raw.reshape(N_OUT, -1, 210)[:, :, 208:210].copy().view(np.uint16)
        assert np.mean((d & 0x7C00) == 0) > 0.5  # the test does reach subnormal d
    x, y0 = activations_and_output(8, n_in, N_OUT, 3, False, seed=5)
    k = products.REGISTRY[TYPES[name].ggml_type]
    y = run_product(vk, k.mv(vk.caps, N_OUT, n_in, 8), raw, name, x, y0, N_OUT, n_in, n_tokens=3)
    check_product(y, y0, w, x, 3, False)
    (rows,) = run_dispatch(vk, k.get_rows(vk.caps, n_in, N_OUT, 2, 1.0), [k.pack(raw), np.zeros((2, n_in), np.float32)],
                           [1], params=make_params(2, n_tokens=2, tokens=[0, N_OUT - 1]))
    expected = w[[0, N_OUT - 1]]
    assert np.abs(rows - expected).max() < 2e-5 * np.abs(expected).max()  # see the get_rows test


@pytest.mark.parametrize("name", sorted(TYPES))
def test_get_rows_scaled_with_ids_at_the_ends(vk, name):
    """Rows 0, the last, a middle one and 0 again, times 0.5; the fifth token slot of the bucket is
    past n_tokens and stays poisoned. Dequantization of one weight is one fma from exact inputs, so
    rows agree with the CPU's to about 2^-24 * 130 of the sub-block scale."""
    n_in = 768
    raw, w = quantized(name, N_OUT, n_in, seed=6)
    k = products.REGISTRY[TYPES[name].ggml_type]
    ids = [0, N_OUT - 1, 33, 0]
    y0 = np.full((5, n_in), np.nan, np.float32)
    (y,) = run_dispatch(vk, k.get_rows(vk.caps, n_in, N_OUT, 5, 0.5), [k.pack(raw), y0], [1],
                        params=make_params(5, n_tokens=4, tokens=ids))
    expected = 0.5 * w[ids]
    assert np.abs(y[:4] - expected).max() < 2e-5 * np.abs(expected).max()
    assert np.all(np.isnan(y[4]))


def test_a_vocabulary_sized_output_spreads_its_grid(vk, monkeypatch):
    """262144 rows (Gemma 3's vocabulary): more workgroups than one grid dimension holds, so the grid
    spreads over y; the last rows are written like the first. Random bytes with sane halves stand
    in for a quantized matrix (quantizing 39M weights would take the test's time). Four rows a
    workgroup: 65536 workgroups (8 rows, Q4_K's own shape, would fit the grid in x)."""
    monkeypatch.setenv(products.MV_ENV, "q4_k=64x4")
    n_out, n_in = 262144, 256
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 256, (n_out, 144), dtype=np.uint8)
    raw[:, 0:4] = np.frombuffer(np.array([1e-3, 2e-4], np.float16).tobytes(), np.uint8)  # d, dmin
    dispatch = products.product(vk.caps, 12, n_out, n_in, 1)
    assert dispatch.shader == "mul_mv_q4_k" and dispatch.groups[1] > 1 and max(dispatch.groups) <= 65535
    x = rng.standard_normal((1, n_in)).astype(np.float32)
    y0 = np.full((1, n_out), np.nan, np.float32)
    y = run_product(vk, dispatch, raw, "q4_k", x, y0, n_out, n_in, n_tokens=1)
    check_product(y, y0, cpu_kernels.dequantize(raw, 12).astype(np.float64), x, 1, False)


def test_product_picks_mv_for_few_columns_and_mm_for_many(vk):
    for name, t in TYPES.items():
        assert products.product(vk.caps, t.ggml_type, 64, 256, 8).shader == f"mul_mv_{name}"
        assert products.product(vk.caps, t.ggml_type, 64, 256, 512).shader == f"mul_mm_{name}"


def test_device_layout_is_the_gguf_size_and_rejects_partial_blocks():
    for name, t in TYPES.items():
        raw, _ = quantized(name, 3, 512)
        words = products.REGISTRY[t.ggml_type].pack(raw)
        assert words.dtype == np.uint32 and words.size == -(-raw.size // 4)
        with pytest.raises(ValueError, match="whole"):
            products.REGISTRY[t.ggml_type].pack(raw[:, :-1])
        with pytest.raises(ValueError, match="multiple of 256"):
            products.REGISTRY[t.ggml_type].mv(None, 3, 300, 1)
