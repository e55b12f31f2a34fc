"""The Vulkan ops other than RoPE and attention (test_rope.py, test_attention.py): norms, softmax,
element-wise ops, gather_rows, KV cache stores and word copies, against the CPU kernels (which
define the semantics) or float64 numpy, on odd sizes, with outputs poisoned and the columns past
the batch's count left alone."""
from __future__ import annotations

import numpy as np
import pytest
from op_checks import EPS, check, randn, seed_of
from vulkan_runs import nan_words, poisoned, run_bound

from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.backend.vulkan import ops
from gpt4all_core.backend.vulkan.context import make_params, run_dispatch
from gpt4all_core.backend.vulkan.ops import COLS_LOGITS, COLS_TOKENS

MAX_COLS = 7


def batch_params(col_source, n):
    """A batch of n tokens (COLS_TOKENS) or of n logit rows out of MAX_COLS tokens (COLS_LOGITS)."""
    if col_source == COLS_TOKENS:
        return make_params(MAX_COLS, n_tokens=n)
    return make_params(MAX_COLS, n_tokens=MAX_COLS, n_logits=n)


def same_bits(a, b):
    return np.array_equal(np.ascontiguousarray(a).view(np.uint32), np.ascontiguousarray(b).view(np.uint32))


# ---- norms ----

@pytest.mark.parametrize("dim,rows_per_col,col_source,in_place", [
    (37, 1, COLS_TOKENS, False), (1000, 1, COLS_LOGITS, True), (64, 5, COLS_TOKENS, True), (4099, 1, COLS_TOKENS, False)])
def test_rms_norm_matches_the_cpu(vk, dim, rows_per_col, col_source, in_place):
    rng = np.random.default_rng(seed_of("rms", dim, rows_per_col))
    cols = 5
    x = randn(rng, MAX_COLS * rows_per_col, dim, scale=3.0)
    w = randn(rng, dim)
    d = ops.rms_norm(vk.caps, dim, rows_per_col, col_source, 1e-5, MAX_COLS)
    params = batch_params(col_source, cols)
    if in_place:
        y, = run_bound(vk, d, [x, w], [0, 1, 0], [0], params)
        untouched = x
    else:
        y, = run_dispatch(vk, d, [x, w, poisoned(*x.shape)], [2], params=params)
        untouched = poisoned(*x.shape)
    n = cols * rows_per_col
    ref = ck.rms_norm(x[:n], w, 1e-5)
    # the sum of squares in float32 (a sequential part per invocation, then a tree), a reciprocal
    # square root and two products
    check(y[:n], ref, (16 + dim / 256) * EPS * np.abs(ref) + 1e-30, "rms_norm")
    assert same_bits(y[n:], untouched[n:])


def test_layer_norm_matches_the_cpu_with_a_large_mean(vk):
    """A mean 1000 times the spread: the two-pass variance keeps its digits."""
    rng = np.random.default_rng(seed_of("ln"))
    dim, cols = 385, 6
    x = randn(rng, MAX_COLS, dim, offset=1000.0)
    w, b = randn(rng, dim), randn(rng, dim)
    d = ops.layer_norm(vk.caps, dim, COLS_TOKENS, 1e-5, MAX_COLS)
    y, = run_dispatch(vk, d, [x, w, b, poisoned(*x.shape)], [3], params=batch_params(COLS_TOKENS, cols))
    ref = ck.layer_norm(x[:cols], w, b, 1e-5)
    # the mean as a float is off by up to half an ulp of 1000 (~256 eps) on either side; over a
    # spread of 1 that is what the normalized values are off by
    check(y[:cols], ref, 600 * EPS * (np.abs(w) + 1), "layer_norm")
    assert np.isnan(y[cols:]).all()


def test_layer_norm_in_place(vk):
    rng = np.random.default_rng(seed_of("ln in place"))
    dim = 100
    x, w, b = randn(rng, MAX_COLS, dim), randn(rng, dim), randn(rng, dim)
    d = ops.layer_norm(vk.caps, dim, COLS_LOGITS, 1e-6, MAX_COLS)
    y, = run_bound(vk, d, [x, w, b], [0, 1, 2, 0], [0], batch_params(COLS_LOGITS, 3))
    check(y[:3], ck.layer_norm(x[:3], w, b, 1e-6), 16 * EPS * (np.abs(w) + np.abs(b) + 1), "layer_norm")
    assert same_bits(y[3:], x[3:])


# ---- softmax ----

def test_softmax_matches_the_cpu(vk):
    rng = np.random.default_rng(seed_of("softmax"))
    rows, n = 5, 1001
    x = randn(rng, rows, n, scale=4.0)
    x[1, ::3] = -np.inf
    x[3] = -np.inf  # nothing left: zeros, not NaN
    y, = run_dispatch(vk, ops.softmax(vk.caps, n, rows, 0.7), [x, poisoned(rows, n)], [1])
    ref = ck.softmax(x, scale=0.7)
    check(y, ref, 64 * EPS * ref + 1e-9, "softmax")
    assert (y[3] == 0).all() and (y[1, ::3] == 0).all()


# ---- element-wise ops ----

ELEMENTWISE = {  # op: (has a second input, float64 reference of (x, b, s), relative bound in eps)
    "add": (True, lambda x, b, s: x + b, 1),
    "mul": (True, lambda x, b, s: x * b, 1),
    "add_bias": (True, lambda x, b, s: x + b[0], 1),
    "swiglu": (True, lambda x, b, s: x * 0.5 * (1 + np.tanh(x / 2)) * b, 16),  # silu without overflow
    "gelu_mul": (True, lambda x, b, s: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))) * b, 16),
    "scale": (False, lambda x, b, s: x * s, 1),
    "softcap": (False, lambda x, b, s: s * np.tanh(x / s), 8),
}


@pytest.mark.parametrize("col_source", [COLS_TOKENS, COLS_LOGITS])
@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise_ops_against_float64(vk, op, col_source):
    has_b, ref_of, rel = ELEMENTWISE[op]
    rng = np.random.default_rng(seed_of("eltwise", op, col_source))
    n, cols = 1283, 4
    x = randn(rng, MAX_COLS, n, scale=3.0)
    x[0, :6] = [1e-7, -3e-5, 0.2, -0.3, 400.0, -1e4]  # softcap: both sides of gk_tanh's switch, no overflow
    b = randn(rng, 1 if op == "add_bias" else MAX_COLS, n)
    s = 1.7 if op == "scale" else 30.0
    if op == "scale":
        d = ops.scale(vk.caps, n, col_source, s, MAX_COLS)
    elif op == "softcap":
        d = ops.softcap(vk.caps, n, col_source, s, MAX_COLS)
    else:
        d = getattr(ops, op)(vk.caps, n, col_source, MAX_COLS)
    y, = run_dispatch(vk, d, [x, b] if has_b else [x], [0], params=batch_params(col_source, cols))
    x64, b64 = x[:cols].astype(np.float64), b[: 1 if op == "add_bias" else cols].astype(np.float64)
    ref = ref_of(x64, b64, s)
    # a few roundings of the result and of its parts (x and b, their product, the activation)
    mag = np.abs(x64) + np.abs(b64) + np.abs(x64 * b64) if has_b else np.abs(x64)
    check(y[:cols], ref, rel * EPS * (np.abs(ref) + mag), op)
    assert same_bits(y[cols:], x[cols:])


def test_swiglu_and_gelu_mul_follow_the_cpu_kernels(vk):
    """The GPU's activations are the CPU's silu(g) * u and gelu(g) * u, not another GELU form."""
    rng = np.random.default_rng(seed_of("act cpu"))
    n = 515
    g, u = randn(rng, MAX_COLS, n, scale=2.0), randn(rng, MAX_COLS, n)
    for op, act in (("swiglu", ck.silu), ("gelu_mul", ck.gelu)):
        y, = run_dispatch(vk, getattr(ops, op)(vk.caps, n, COLS_TOKENS, MAX_COLS), [g, u], [0],
                          params=batch_params(COLS_TOKENS, MAX_COLS))
        ref = act(g).astype(np.float64) * u
        check(y, ref, 8 * EPS * np.abs(u) * (np.abs(g) + 1), op)


def test_gather_rows(vk):
    rng = np.random.default_rng(seed_of("gather"))
    n, n_tokens = 301, 6
    x = randn(rng, n_tokens, n)
    rows = [5, 0, 5]
    params = make_params(MAX_COLS, n_tokens=n_tokens, n_logits=len(rows), logit_rows=rows)
    y, = run_dispatch(vk, ops.gather_rows(vk.caps, n, MAX_COLS), [x, poisoned(MAX_COLS, n)], [1], params=params)
    assert same_bits(y[:3], x[rows])
    assert np.isnan(y[3:]).all()


# ---- the KV cache ----

def special_values(rng, n):
    """Random floats with every edge of float -> half rounding among them: ties to even both
    ways, subnormal halves (and their ties), values that round to 65504 or to infinity, zeros,
    infinities and NaN."""
    x = randn(rng, n, scale=2.0)
    ties = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 2 ** -25, 3 * 2 ** -25, 2 ** -24 * 1.5,
                     2 ** -26, 2 ** -14 * (1 - 2 ** -12), 65504.0, 65519.0, 65520.0, 1e6, -0.0, 0.0, 1e-40,
                     np.inf, -np.inf, np.nan, 6e-5, -3e-7], np.float64)
    x[: ties.size] = ties.astype(np.float32)
    x[ties.size: ties.size + 200] *= 1e-5  # a spread of subnormal halves
    return x


@pytest.mark.parametrize("f16", [False, True])
def test_kv_store_writes_the_cpu_caches_bytes(vk, f16):
    rng = np.random.default_rng(seed_of("kv_store", f16))
    kv_dim, n_ctx, n_tokens = 2 * 3 * 50, 11, 5
    src = special_values(rng, MAX_COLS * kv_dim).reshape(MAX_COLS, kv_dim)
    slots = np.array([9, 2, 4, 0, 7], np.int32)
    words = kv_dim // 2 if f16 else kv_dim
    cache = nan_words(n_ctx * words)
    d = ops.kv_store(vk.caps, kv_dim, f16, MAX_COLS)
    got, = run_dispatch(vk, d, [src, cache], [1], params=make_params(MAX_COLS, n_tokens=n_tokens, slots=slots))
    ref = cache.copy().view(np.float16 if f16 else np.float32).reshape(n_ctx, kv_dim)
    ck.copy_to_cache(ref, src[:n_tokens], slots)
    assert np.array_equal(got, ref.reshape(-1).view(np.uint32))
    untouched = np.setdiff1d(np.arange(n_ctx), slots)
    assert (got.reshape(n_ctx, words)[untouched] == 0x7E007E00).all()


@pytest.mark.parametrize("src,dst,n", [(100, 103, 20000), (5003, 5000, 20000), (0, 15000, 9000), (7, 7, 1000)])
def test_copy_words_within_one_buffer_is_a_memmove(vk, src, dst, n):
    """Overlapping moves either way (one workgroup, several chunks) and far or null ones (the grid)."""
    buf = np.random.default_rng(seed_of("memmove", src, dst)).integers(0, 2 ** 32, 30000, dtype=np.uint32)
    got, = run_bound(vk, ops.copy_words(vk.caps, src, dst, n), [buf], [0, 0], [0], make_params(1, n_tokens=1))
    ref = buf.copy()
    ref[dst:dst + n] = buf[src:src + n]
    assert np.array_equal(got, ref)


def test_copy_words_between_buffers(vk):
    rng = np.random.default_rng(seed_of("copy"))
    a, b = rng.integers(0, 2 ** 32, 5000, dtype=np.uint32), rng.integers(0, 2 ** 32, 6000, dtype=np.uint32)
    d = ops.copy_words(vk.caps, 10, 20, 4321, same_buffer=False)
    assert d.groups[0] > 1  # overlapping offsets in two buffers need no ordering
    got, = run_dispatch(vk, d, [a, b], [1])
    ref = b.copy()
    ref[20:20 + 4321] = a[10:10 + 4321]
    assert np.array_equal(got, ref)


def test_contract_checks():
    caps = ops.Caps(name="test")
    with pytest.raises(ValueError, match="max_cols"):
        ops.add(caps, 10, COLS_TOKENS, 0)
    with pytest.raises(ValueError, match="even kv_dim"):
        ops.kv_store(caps, 7, True, 1)
    with pytest.raises(ValueError, match="multiple of n_head_kv"):
        ops.attention(caps, 6, 4, 64, False, 0, 0.125, 0.0, False, 1)
    with pytest.raises(ValueError, match="n_rot"):
        ops.rope(caps, 4, 64, {"n_rot": 66}, 1)
