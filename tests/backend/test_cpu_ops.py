"""The non-quantized ops (kernels/ops*.c through backend/ops.pxi) against float64 numpy.

Each op runs at every SIMD level this CPU has (the `simd` fixture) on fresh random inputs, never
zeros, at odd shapes; each check states its error bound and why. References are written here from
the formulas (ggml's semantics), in float64.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_checks import EPS, HYPO, at_level, attn_bound, check, randn, ref_softmax, seed_of

from gpt4all_core.backend import cpu_kernels as ck

LEVELS = ck.supported_simd_levels()


# ---- references (float64) ----

def ref_rms_norm(x, w, eps):
    x = x.astype(np.float64)
    y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return y if w is None else y * w


def ref_layer_norm(x, w, b, eps):
    x = x.astype(np.float64)
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)




# ---- norms ----

NORM_SHAPES = [(1, 1), (1, 7), (3, 17), (5, 64), (2, 100), (4, 576), (1, 4097), (33, 1000)]


@pytest.mark.parametrize("shape", NORM_SHAPES)
@pytest.mark.parametrize("weighted", [True, False])
def test_rms_norm(simd, shape, weighted):
    rng = np.random.default_rng(seed_of(shape, weighted))
    # small rows (rms ~ 3e-3) make eps=1e-5 a 50% effect, so a misplaced eps shows
    x = randn(rng, *shape, scale=rng.choice([1.0, 3e-3]))
    w = randn(rng, shape[-1]) if weighted else None
    got = ck.rms_norm(x, w, eps=1e-5, n_threads=2)
    # y = x * r * w: three roundings plus r's error; r comes from a float sum of n squares in 16
    # or 32 lanes (SIMD; double in C), each term positive, so its relative error is <= (n/16) eps,
    # halved by the square root
    ref = ref_rms_norm(x, w, 1e-5)
    check(got, ref, (6 + shape[-1] / 32) * EPS * np.abs(ref), "rms_norm")


@pytest.mark.parametrize("shape", NORM_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(simd, shape, affine):
    if shape[-1] == 1:
        shape = (shape[0], 2)  # variance of one value is 0: y = 0 / sqrt(eps), nothing to test
    rng = np.random.default_rng(seed_of(shape, affine))
    x = randn(rng, *shape, offset=3.0)  # |mean| >> std would break a one-pass variance
    w, b = (randn(rng, shape[-1]), randn(rng, shape[-1])) if affine else (None, None)
    got = ck.layer_norm(x, w, b, eps=1e-5, n_threads=2)
    ref = ref_layer_norm(x, w, b, 1e-5)
    # the mean's float error (~ (n/8) eps |mean|) shifts every x - mean; then as rms_norm
    xd = x.astype(np.float64)
    r = 1 / np.sqrt(xd.var(-1, keepdims=True) + 1e-5)
    scale = np.abs(1 if w is None else w) * r * (np.abs(xd - xd.mean(-1, keepdims=True)) + np.abs(xd.mean(-1, keepdims=True)))
    check(got, ref, (4 + shape[-1] / 16) * EPS * (scale + (0 if b is None else np.abs(b))), "layer_norm")


def test_norm_leading_dims_and_in_place(simd):
    rng = np.random.default_rng(7)
    x = randn(rng, 3, 4, 64)  # gemma's QK norm: per head over head_dim
    w = randn(rng, 64)
    ref = ref_rms_norm(x, w, 1e-6)
    check(ck.rms_norm(x, w), ref, 16 * EPS * np.abs(ref))
    y = ck.rms_norm(x, w, out=x)
    assert y is x
    check(x, ref, 16 * EPS * np.abs(ref))


# ---- softmax ----

SOFTMAX_SHAPES = [(1, 1), (1, 7), (3, 17), (4, 64), (2, 257), (8, 1000), (1, 32003), (64, 600)]


def softmax_bound(x, mask, scale, ref):
    """exp of an argument off by eps*|arg| is off by that relatively: <= (8 + 2|arg|max) eps of each
    p_i (exp itself within 2 ulp), plus the float sum's (n/8) eps of the normalization (8 lanes)."""
    arg = np.abs(x.astype(np.float64) * scale + (0 if mask is None else np.where(np.isfinite(mask), mask, 0)))
    return (8 + 2 * arg.max() + x.shape[-1] / 8) * EPS * ref + 1e-30


@pytest.mark.parametrize("shape", SOFTMAX_SHAPES)
@pytest.mark.parametrize("masked", [False, True])
def test_softmax(simd, shape, masked):
    rng = np.random.default_rng(seed_of(shape, masked))
    x = randn(rng, *shape, scale=4.0)
    mask = None
    if masked:
        mask = randn(rng, *shape)
        mask[rng.random(shape) < 0.3] = -np.inf
        mask[..., 0] = 0.0  # each row keeps something
    got = ck.softmax(x, mask, scale=0.7, n_threads=2)
    ref = ref_softmax(x, mask, 0.7)
    check(got, ref, softmax_bound(x, mask, 0.7, ref), "softmax")
    assert np.allclose(got.sum(-1), 1, atol=1e-5)


def test_softmax_masks_broadcast_and_fully_masked_rows(simd):
    rng = np.random.default_rng(3)
    x = randn(rng, 2, 5, 37)  # e.g. [n_head, n_tokens, n_kv]
    causal = np.triu(np.full((5, 37), -np.inf, np.float32), 33)  # [n_tokens, n_kv] for every head
    got = ck.softmax(x, causal)
    ref = ref_softmax(x, causal, 1.0)
    check(got, ref, softmax_bound(x, causal, 1.0, ref))
    row = randn(rng, 37)  # one mask row for all
    ref = ref_softmax(x, row, 2.0)
    check(ck.softmax(x, row, 2.0), ref, softmax_bound(x, row, 2.0, ref))
    full = np.zeros((5, 37), np.float32)
    full[2] = -np.inf
    got = ck.softmax(x, full)
    assert np.all(got[:, 2] == 0) and np.isfinite(got).all()
    assert np.allclose(got[:, [0, 1, 3, 4]].sum(-1), 1, atol=1e-5)
    y = ck.softmax(x, out=x)
    assert y is x and np.allclose(x.sum(-1), 1, atol=1e-5)


@HYPO
@given(rows=st.integers(1, 6), n=st.integers(1, 300), scale=st.floats(0.01, 4.0),
       seed=st.integers(0, 2**32 - 1), level=st.sampled_from(LEVELS))
def test_softmax_hypothesis(rows, n, scale, seed, level):
    rng = np.random.default_rng(seed)
    x = randn(rng, rows, n, scale=rng.uniform(0.1, 20))
    mask = np.where(rng.random((rows, n)) < 0.5, -np.inf, 0).astype(np.float32)
    got = at_level(level, lambda: ck.softmax(x, mask, scale))
    ref = ref_softmax(x, mask, scale)
    check(got, ref, softmax_bound(x, mask, scale, ref), f"softmax {level}")


@HYPO
@given(rows=st.integers(1, 5), n=st.integers(1, 600), mag=st.floats(1e-3, 1e3), seed=st.integers(0, 2**32 - 1),
       level=st.sampled_from(LEVELS))
def test_rms_norm_hypothesis(rows, n, mag, seed, level):
    rng = np.random.default_rng(seed)
    x = randn(rng, rows, n, scale=mag)
    w = randn(rng, n)
    got = at_level(level, lambda: ck.rms_norm(x, w, eps=1e-6))
    ref = ref_rms_norm(x, w, 1e-6)
    check(got, ref, (6 + n / 32) * EPS * np.abs(ref), f"rms_norm {level}")


# ---- activations and element-wise ops ----

ELEM_SIZES = [1, 7, 8, 15, 16, 17, 33, 100, 1000, 40001]


@pytest.mark.parametrize("n", ELEM_SIZES)
def test_activations(simd, n):
    rng = np.random.default_rng(n)
    x = randn(rng, n, scale=4.0)
    x[:4] = [30.0, -30.0, 95.0, -95.0][: min(n, 4)]  # exp overflow/underflow ends of the range
    xd = x.astype(np.float64)
    ax = np.abs(xd)
    # silu = x / (1 + e^-x): exp within 2 ulp, a divide and an add: 8 ulp of the result
    silu = xd / (1 + np.exp(-xd))
    check(ck.silu(x, n_threads=2), silu, 8 * EPS * np.abs(silu) + 1e-37, "silu")
    # gelu (tanh form) = x sigmoid(2u), 2u = x (a + b x^2): u's rounding (3 eps |u|) moves the
    # sigmoid by 2|u| (1 - sigmoid) of that relatively
    z = xd * (2 * math.sqrt(2 / math.pi)) * (1 + 0.044715 * xd * xd)
    with np.errstate(over="ignore"):
        gelu = xd / (1 + np.exp(-z))  # = 0.5 x (1 + tanh(z/2)), without float64's own cancellation
        sig_slope = np.abs(z) / (1 + np.exp(z))  # |z| (1 - sigmoid(z)): how z's error reaches the result
    check(ck.gelu(x), gelu, (8 + 3 * sig_slope) * EPS * np.abs(gelu) + 1e-37, "gelu")
    # erf form: 1 + erf(x/sqrt 2) cancels for x < 0, so its error is absolute: eps |x|
    gelu_erf = 0.5 * xd * (1 + np.vectorize(math.erf)(xd / math.sqrt(2)))
    check(ck.gelu_erf(x), gelu_erf, 4 * EPS * (np.abs(gelu_erf) + ax), "gelu_erf")
    up = randn(rng, n)
    swiglu = silu * up
    check(ck.swiglu(x, up), swiglu, 10 * EPS * np.abs(swiglu) + 1e-37, "swiglu")


def test_gelu_matches_ggml_tanh_formula_and_erf(simd):
    """The sigmoid identity is the same function as ggml_gelu's 0.5 x (1 + tanh(...)), and near the
    erf form (the approximation's own error is below 1e-3)."""
    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    xd = x.astype(np.float64)
    tanh_form = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd**3)))
    check(ck.gelu(x), tanh_form, 1e-6 * (1 + np.abs(xd)))
    assert np.abs(ck.gelu(x) - ck.gelu_erf(x)).max() < 1e-3


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 17), (5, 64), (2, 3, 33), (40, 1000)])
def test_add_mul_scale_exact(simd, shape):
    """One IEEE operation per element: the result is numpy's float32 result, bit for bit."""
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    a, b = randn(rng, *shape), randn(rng, *shape)
    row = randn(rng, shape[-1])
    for op, npop in ((ck.add, np.add), (ck.mul, np.multiply)):
        assert np.array_equal(op(a, b, n_threads=2), npop(a, b))
        assert np.array_equal(op(a, row), npop(a, row))  # row broadcast
        if len(shape) == 3:
            assert np.array_equal(op(a, b[0]), npop(a, b[0]))  # [rows, n] against [., rows, n]
        c = a.copy()
        assert op(c, b, out=c) is c and np.array_equal(c, npop(a, b))
    assert np.array_equal(ck.scale(a, 0.3), a * np.float32(0.3))


# ---- KV cache ----

@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint16])
@pytest.mark.parametrize("row", [(1, 64), (3, 80), (2, 7)])
def test_copy_to_cache(simd, dtype, row):
    rng = np.random.default_rng(sum(row))
    n_ctx = 300
    cache = np.zeros((n_ctx, *row), dtype)
    src = randn(rng, 5, *row, scale=1000.0)
    src.flat[:5] = [1e-6, 7e4, -1e9, np.nan, 3e-8]  # F16 subnormal, overflow to inf, NaN, underflow
    slots = np.array([299, 0, 17, 256, 18], np.int32)
    ck.copy_to_cache(cache, src, slots)
    with np.errstate(over="ignore"):  # numpy also rounds to nearest even, overflowing to inf
        want = src.astype(np.float16).view(np.uint16) if dtype != np.float32 else src
    got = cache.view(np.uint16) if dtype != np.float32 else cache
    assert np.array_equal(got[slots], want, equal_nan=dtype == np.float32)
    untouched = np.setdiff1d(np.arange(n_ctx), slots)
    assert not got[untouched].any()


# ---- every SIMD level against the generic kernels ----

def _all_ops(rng):
    """A call of each op with a dispatch-table kernel, on awkward sizes; (name, thunk, abs bound)."""
    x = randn(rng, 7, 1001, scale=3.0)
    w, b = randn(rng, 1001), randn(rng, 1001)
    mask = np.where(rng.random((7, 1001)) < 0.2, -np.inf, 0).astype(np.float32)
    q = randn(rng, 3, 6, 80)
    k, v = randn(rng, 301, 2, 80), randn(rng, 301, 2, 80)
    k16, v16 = k.astype(np.float16), v.astype(np.float16)
    qp, kp = np.array([100, 250, 300], np.int32), np.arange(301, dtype=np.int32)
    ab = attn_bound(q, k, v, 80**-0.5)
    return [
        ("rms_norm", lambda: ck.rms_norm(x, w), 1e-4),
        ("layer_norm", lambda: ck.layer_norm(x, w, b), 1e-4),
        ("softmax", lambda: ck.softmax(x, mask, 0.5), 1e-6),
        ("silu", lambda: ck.silu(x), 1e-5),
        ("gelu", lambda: ck.gelu(x), 1e-5),
        ("swiglu", lambda: ck.swiglu(x, x[::-1].copy()), 1e-4),
        ("add", lambda: ck.add(x, w), 0.0),
        ("mul", lambda: ck.mul(x, w), 0.0),
        ("scale", lambda: ck.scale(x, 0.7), 0.0),
        ("rope", lambda: ck.rope(q.copy(), qp, mode="neox"), 1e-5),
        ("attention f32", lambda: ck.attention(q, k, v, qp, kp, window=100, softcap=30.0), ab),
        ("attention f16", lambda: ck.attention(q, k16, v16, qp, kp), ab),
        ("copy_to_cache f16", lambda: (ck.copy_to_cache(c := np.zeros((9, 6, 80), np.float16), q,
                                                         np.array([0, 8, 3], np.int32)), c)[1], 0.0),
    ]


@pytest.mark.parametrize("level", [lv for lv in LEVELS if lv != "generic"] or ["generic"])
def test_levels_agree_with_generic(level):
    """Same inputs through the generic table and through `level`: element-wise ops and conversions
    bit for bit, the rest within the op's bound (lane sums associate differently, exp is a polynomial
    in the SIMD files and libm's expf in the generic one)."""
    for name, fn, bound in _all_ops(np.random.default_rng(123)):
        want = at_level("generic", fn)
        got = at_level(level, fn)
        assert want.shape == got.shape
        if bound == 0:
            assert np.array_equal(got, want), name
        else:
            check(got, want.astype(np.float64), bound * (1 + np.abs(want)), f"{name} at {level}")


def test_threads_do_not_change_results(simd):
    rng = np.random.default_rng(2)
    x = randn(rng, 128, 1024)  # above every threading threshold
    q, k, v = randn(rng, 64, 8, 64), randn(rng, 64, 2, 64), randn(rng, 64, 2, 64)
    for fn in (lambda nt: ck.rms_norm(x, n_threads=nt), lambda nt: ck.softmax(x, n_threads=nt),
               lambda nt: ck.silu(x, n_threads=nt), lambda nt: ck.attention(q, k, v, n_threads=nt),
               lambda nt: ck.rope(q.copy(), np.arange(64), n_threads=nt), lambda nt: ck.add(x, x[0], n_threads=nt)):
        assert np.array_equal(fn(1), fn(2))


# ---- bad arguments ----

def f32(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize("call, match", [
    (lambda: ck.rms_norm(f32(3, 8), f32(7)), "weight must have shape"),
    (lambda: ck.rms_norm(np.ones((3, 8)), None), "x must have dtype float32"),
    (lambda: ck.rms_norm(f32(3, 8)[:, ::2]), "x must be C-contiguous"),
    (lambda: ck.rms_norm(f32(3, 8), out=f32(3, 9)), "out must have shape"),
    (lambda: ck.rms_norm(f32(3, 8), out=np.ones((3, 8), np.float64)), "out must have dtype"),
    (lambda: ck.rms_norm(f32(3, 8), n_threads=0), "n_threads must be at least 1"),
    (lambda: ck.layer_norm(f32(3, 8), f32(8), f32(9)), "bias must have shape"),
    (lambda: ck.softmax(f32(3, 8), f32(8, 3)), "mask has shape"),
    (lambda: ck.softmax(f32(3, 8), f32(2, 8)), "mask has shape"),
    (lambda: ck.softmax(f32(3, 8), np.ones(8, np.float16)), "mask must have dtype"),
    (lambda: ck.rope(f32(2, 3, 8), np.arange(3, dtype=np.int32)), "positions must have shape"),
    (lambda: ck.rope(f32(2, 3, 8), np.zeros(2, np.float32)), "positions must hold integers"),
    (lambda: ck.rope(f32(2, 24), np.arange(2)), "x must have 3 dimensions"),
    (lambda: ck.rope(f32(2, 3, 8), np.arange(2), n_rot=7), "n_rot must be even"),
    (lambda: ck.rope(f32(2, 3, 8), np.arange(2), n_rot=10), "n_rot must be even and at most head_dim"),
    (lambda: ck.rope(f32(2, 3, 8), np.arange(2), mode="glm"), "mode must be"),
    (lambda: ck.rope(f32(2, 3, 8), np.arange(2), freq_factors=f32(8)), "freq_factors must have shape"),
    (lambda: ck.rope(f32(2, 3, 8), np.arange(2), ext_factor=1.0), "n_ctx_orig .* must be positive"),
    (lambda: ck.rope(f32(2, 3, 8), np.arange(2), freq_base=0.0), "freq_base must be positive"),
    (lambda: ck.rope(np.ones((2, 3, 8), np.float32)[:, :, :4], np.arange(2)), "x must be C-contiguous"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 2, 80), f32(5, 2, 80)), "head_dim differs: q has 64, k_cache 80"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 3, 64), f32(5, 3, 64)), r"n_head \(4\) must be a multiple of .*n_head_kv \(3\)"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 2, 64), f32(6, 2, 64)), "v_cache must have k_cache's shape"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 2, 64), np.ones((5, 2, 64), np.float16)), "v_cache must be F32 or F16 as"),
    (lambda: ck.attention(f32(2, 4, 64), np.ones((5, 2, 64), np.int16), f32(5, 2, 64)), "k_cache must have dtype"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 2, 64), f32(5, 2, 64), q_pos=np.arange(3)), r"q_pos must have shape \(2,\)"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 2, 64), f32(5, 2, 64), kv_pos=np.arange(4)), r"kv_pos must have shape \(5,\)"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 2, 64), f32(5, 2, 64), window=-1), "window must be"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 2, 64), f32(5, 2, 64), softcap=-1.0), "softcap must be"),
    (lambda: ck.attention(f32(2, 4, 64), f32(5, 2, 64), f32(5, 2, 64), out=f32(2, 4, 63)), "out must have shape"),
    (lambda: ck.attention(f32(2, 256), f32(5, 2, 64), f32(5, 2, 64)), "q must have 3 dimensions"),
    (lambda: ck.swiglu(f32(4, 8), f32(4, 9)), "up must have gate's shape"),
    (lambda: ck.add(f32(4, 8), f32(4)), "b has shape"),
    (lambda: ck.mul(f32(4, 8), f32(3, 4, 8)), "b has shape"),
    (lambda: ck.copy_to_cache(f32(10, 2, 8), f32(3, 2, 8), np.array([0, 1, 10])), r"slots must lie in \[0, 10\)"),
    (lambda: ck.copy_to_cache(f32(10, 2, 8), f32(3, 2, 8), np.array([0, -1, 1])), "slots must lie in"),
    (lambda: ck.copy_to_cache(f32(10, 2, 8), f32(3, 2, 7), np.array([0, 1, 2])), "src rows must hold 16 values"),
    (lambda: ck.copy_to_cache(f32(10, 2, 8), f32(3, 16), np.array([0, 1])), "slots must have shape"),
    (lambda: ck.copy_to_cache(np.ones((10, 16), np.float64), f32(1, 16), np.array([0])), "cache must have dtype"),
])
def test_bad_arguments_raise_value_error_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_arguments_more():
    q = f32(2, 4, 64)
    with pytest.raises(ValueError, match="out must not overlap q"):
        ck.attention(q, f32(5, 2, 64), f32(5, 2, 64), out=q)
    ro = f32(2, 3, 8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="x is read-only"):
        ck.rope(ro, np.arange(2))
    ro = f32(4, 16)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="cache is read-only"):
        ck.copy_to_cache(ro, f32(1, 16), np.array([0]))
    with pytest.raises(ValueError, match="outside int32"):
        ck.rope(f32(1, 1, 8), np.array([2**40]))
    with pytest.raises(TypeError, match="x must be a numpy array"):
        ck.silu([1.0, 2.0])
    x = randn(np.random.default_rng(1), 3, 2, 16)  # positions of any integer dtype that fits are taken
    assert np.array_equal(ck.rope(x.copy(), np.array([1, 2, 3], np.int64)), ck.rope(x.copy(), np.array([1, 2, 3], np.uint8)))
