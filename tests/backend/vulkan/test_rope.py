"""RoPE on Vulkan (activations, and the keys of the KV cache on a context erase) against the CPU's
gk_rope: normal and NeoX pairs, partial rotation, linear scaling, freq_factors, YaRN, positions far
past where a float32 angle would drift."""
from __future__ import annotations

import math

import numpy as np
import pytest
from op_checks import EPS, check, randn, seed_of
from vulkan_runs import nan_words, poisoned

from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.backend.vulkan import ops
from gpt4all_core.backend.vulkan.context import make_params, run_dispatch

MAX_COLS = 6

ROPES = {
    "llama": {"n_rot": 64, "mode": "normal", "freq_base": 10000.0},
    "neox partial": {"n_rot": 24, "mode": "neox", "freq_base": 1e6, "freq_scale": 0.25},
    "llama3 factors": {"n_rot": 64, "mode": "normal", "freq_base": 500000.0, "freq_factors": "random"},
    "yarn": {"n_rot": 64, "mode": "neox", "freq_base": 10000.0, "freq_scale": 0.125, "ext_factor": 1.0,
             "attn_factor": 0.9, "n_ctx_orig": 4096, "beta_fast": 32.0, "beta_slow": 1.0},
}


def rope_dict(name, rng):
    r = dict(ROPES[name])
    if r.get("freq_factors") == "random":
        r["freq_factors"] = rng.uniform(1.0, 8.0, r["n_rot"] // 2).astype(np.float32)
    return r


def cpu_rope(x, pos, rope):
    """ck.rope in place on a copy, with the dict's keywords."""
    y = x.copy()
    kw = {k: v for k, v in rope.items() if k != "mode"}
    ck.rope(y, np.asarray(pos, np.int32), mode=rope.get("mode", "normal"), **kw)
    return y


def rope_bound(x, rope):
    """The angle is good to ~1e-6 rad (rope.comp), cos and sin to a few eps: each output is off by
    that times the pair's magnitude, scaled like cos and sin."""
    mscale = ops._rope_mscale(ops._rope_settings(rope, x.shape[-1]))
    return (4e-6 + 8 * EPS) * mscale * np.abs(x).max(axis=-1, keepdims=True) * 2 + 1e-30


@pytest.mark.parametrize("name", sorted(ROPES))
def test_rope_matches_the_cpu_far_out(vk, name):
    rng = np.random.default_rng(seed_of("rope", name))
    n_head, head_dim, n_tokens = 3, 80, 5
    rope = rope_dict(name, rng)
    x = randn(rng, MAX_COLS, n_head, head_dim)
    pos = np.array([0, 7, 4095, 131071, 1_000_003, 99], np.int32)
    freqs = ops.rope_freqs(rope, head_dim)
    y, = run_dispatch(vk, ops.rope(vk.caps, n_head, head_dim, rope, MAX_COLS), [x, freqs], [0],
                      params=make_params(MAX_COLS, n_tokens=n_tokens, pos=pos))
    ref = cpu_rope(x[:n_tokens], pos[:n_tokens], rope)
    check(y[:n_tokens], ref, rope_bound(x[:n_tokens], rope), name)
    n_rot = rope["n_rot"]
    assert np.array_equal(y[:, :, n_rot:], x[:, :, n_rot:])  # dims past n_rot stay
    assert np.array_equal(y[n_tokens:], x[n_tokens:])        # tokens past the batch too


def test_rope_angle_table_beats_float32_angles():
    """pos * freq in float32 is off by ~1e-2 rad at pos 1e6; the table's a + b + c split is not."""
    rope = ROPES["llama"]
    table = ops.rope_freqs(rope, 64)
    pos = 1_000_003
    i = np.arange(32)
    exact = np.mod(pos * 10000.0 ** (-2 * i / 64) / (2 * math.pi), 1.0)
    # the shader's sum of fractions of exact float32 products, redone in float64
    p_hi = pos & ~0xFFF
    p_lo = pos - p_hi
    parts = [np.float32(p) * table[:, k] for p in (p_hi, p_lo) for k in (0, 1)]
    assert all(np.array_equal(pa.astype(np.float64), (np.float64(p) * table[:, k].astype(np.float64)))
               for pa, (p, k) in zip(parts, [(p_hi, 0), (p_hi, 1), (p_lo, 0), (p_lo, 1)]))  # exact
    turns = np.mod(sum(np.mod(pa.astype(np.float64), 1.0) for pa in parts) + pos * table[:, 2].astype(np.float64), 1.0)
    err = np.abs((turns - exact + 0.5) % 1.0 - 0.5) * 2 * math.pi
    assert err.max() < 1e-6
    naive = np.float32(pos) * (np.float32(1.0) / np.power(np.float32(10000.0), np.float32(2) * i.astype(np.float32) / 64))
    naive_err = np.abs((naive.astype(np.float64) - exact * 2 * math.pi + math.pi) % (2 * math.pi) - math.pi)
    assert naive_err.max() > 1e-3


@pytest.mark.parametrize("f16", [False, True])
@pytest.mark.parametrize("name", ["llama", "neox partial", "yarn"])
def test_rope_cache_rotates_the_cpus_keys(vk, name, f16):
    """Slots [first, first + count) move by delta positions (negative: a context erase); every other
    slot, and the dims past n_rot, keep their words."""
    rng = np.random.default_rng(seed_of("rope_cache", name, f16))
    n_ctx, n_head_kv, head_dim = 13, 2, 80
    first, count, delta = 3, 7, -1234
    rope = rope_dict(name, rng)
    keys = randn(rng, n_ctx, n_head_kv, head_dim)
    cache = keys.astype(np.float16) if f16 else keys
    words = cache.reshape(-1).view(np.uint32).copy()
    d = ops.rope_cache(vk.caps, n_head_kv, head_dim, f16, rope, first, count, delta)
    got, = run_dispatch(vk, d, [words, ops.rope_freqs(rope, head_dim)], [0])
    got = got.view(cache.dtype).reshape(cache.shape)
    rows = cache[first:first + count].astype(np.float32)
    ref = cpu_rope(rows, np.full(count, delta), rope)
    # F16: the GPU and CPU floats differ by ~1e-6, so a rounding may go the other way: one half-ulp
    half_ulp = 2.0 ** (np.floor(np.log2(np.abs(ref) + 1e-30)) - 10) if f16 else 0.0
    check(got[first:first + count].astype(np.float32), ref, rope_bound(rows, rope) + half_ulp, name)
    if f16:  # exact where the float result is not near a rounding tie: the CPU's rounding
        ref16 = ref.astype(np.float16)
        assert np.mean(got[first:first + count] == ref16) > 0.99
    outside = np.r_[0:first, first + count:n_ctx]
    assert np.array_equal(got[outside].view(np.uint16 if f16 else np.uint32), cache[outside].view(np.uint16 if f16 else np.uint32))
    n_rot = rope["n_rot"]
    assert np.array_equal(got[..., n_rot:], cache[..., n_rot:])


def test_rope_cache_with_no_slots_changes_nothing(vk):
    rope = ROPES["llama"]
    words = nan_words(4 * 64)
    got, = run_dispatch(vk, ops.rope_cache(vk.caps, 1, 64, True, rope, 2, 0, 5), [words, ops.rope_freqs(rope, 64)], [0])
    assert np.array_equal(got, words)


def test_rope_leaves_poisoned_tokens_past_the_batch(vk):
    """Rows past n_tokens are not even read: NaN stays NaN, and no NaN leaks into the batch."""
    rng = np.random.default_rng(seed_of("rope poison"))
    rope = ROPES["llama"]
    x = poisoned(MAX_COLS, 2, 64)
    x[:2] = randn(rng, 2, 2, 64)
    y, = run_dispatch(vk, ops.rope(vk.caps, 2, 64, rope, MAX_COLS), [x, ops.rope_freqs(rope, 64)], [0],
                      params=make_params(MAX_COLS, n_tokens=2, pos=[3, 4]))
    assert np.isfinite(y[:2]).all() and np.isnan(y[2:]).all()


@pytest.mark.parametrize("f16", [False, True])
@pytest.mark.parametrize("name", ["llama", "neox partial", "yarn"])
def test_rope_store_is_rope_then_kv_store(vk, name, f16):
    """The fused decode-step op writes the same cache words, bit for bit, as rope followed by
    kv_store; other slots keep theirs, and the keys themselves are left as they were."""
    rng = np.random.default_rng(seed_of("rope_store", name, f16))
    n_head_kv, head_dim, n_ctx, n_tokens = 3, 80, 11, 5
    kv_dim = n_head_kv * head_dim
    rope = rope_dict(name, rng)
    freqs = ops.rope_freqs(rope, head_dim)
    x = randn(rng, MAX_COLS, n_head_kv, head_dim)
    params = make_params(MAX_COLS, n_tokens=n_tokens, pos=[5, 0, 4095, 131071, 77], slots=[9, 2, 4, 0, 7])
    cache = nan_words(n_ctx * (kv_dim // 2 if f16 else kv_dim))
    rotated, = run_dispatch(vk, ops.rope(vk.caps, n_head_kv, head_dim, rope, MAX_COLS), [x, freqs], [0], params=params)
    two_steps, = run_dispatch(vk, ops.kv_store(vk.caps, kv_dim, f16, MAX_COLS), [rotated, cache], [1], params=params)
    keys, fused = run_dispatch(vk, ops.rope_store(vk.caps, n_head_kv, head_dim, f16, rope, MAX_COLS),
                               [x, freqs, cache], [0, 2], params=params)
    assert np.array_equal(fused, two_steps)
    assert np.array_equal(keys, x)
    words = fused.reshape(n_ctx, -1)
    untouched = np.setdiff1d(np.arange(n_ctx), [9, 2, 4, 0, 7])
    assert np.array_equal(words[untouched], cache.reshape(n_ctx, -1)[untouched])
    assert not np.array_equal(words[[9, 2]], cache.reshape(n_ctx, -1)[[9, 2]])


def test_rope_store_refuses_an_odd_head_with_halves(vk):
    with pytest.raises(ValueError, match="even head_dim"):
        ops.rope_store(vk.caps, 2, 63, True, {**ROPES["llama"], "n_rot": 62}, 1)
