"""RoPE (normal, NeoX, linear scaling, per-dimension factors, YaRN) and attention over an F32 or F16
KV cache (GQA, causal, sliding window, soft-cap, bidirectional) against float64 numpy references."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_checks import EPS, HYPO, at_level, attn_bound, check, randn, ref_softmax, seed_of

from gpt4all_core.backend import cpu_kernels as ck

LEVELS = ck.supported_simd_levels()


def ref_rope_angles(pos, n_rot, base, freq_scale, freq_factors=None, ext_factor=0.0, attn_factor=1.0,
                    beta_fast=32.0, beta_slow=1.0, n_ctx_orig=0):
    """(theta[n_tokens, n_rot/2], mscale) from ggml_rope_ext's formulas (YaRN: rope_yarn,
    rope_yarn_ramp, ggml_rope_yarn_corr_dims)."""
    base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow = (
        float(np.float32(v)) for v in (base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow))
    i = np.arange(n_rot // 2, dtype=np.float64)
    extrap = pos.astype(np.float64)[:, None] * base ** (-2 * i / n_rot)
    if freq_factors is not None:
        extrap = extrap / freq_factors.astype(np.float64)
    interp = freq_scale * extrap
    if ext_factor == 0:
        return interp, attn_factor

    def corr_dim(n_turns):
        return n_rot * math.log(n_ctx_orig / (n_turns * 2 * math.pi)) / (2 * math.log(base))

    lo, hi = max(0.0, math.floor(corr_dim(beta_fast))), min(n_rot - 1.0, math.ceil(corr_dim(beta_slow)))
    ramp = (1 - np.clip((i - lo) / max(0.001, hi - lo), 0, 1)) * ext_factor
    return interp * (1 - ramp) + extrap * ramp, attn_factor * (1 + 0.1 * math.log(1 / freq_scale))


def ref_rope(x, pos, n_rot, mode, **kw):
    theta, mscale = ref_rope_angles(pos, n_rot, **kw)
    c, s = (np.cos(theta) * mscale)[:, None, :], (np.sin(theta) * mscale)[:, None, :]
    y = x.astype(np.float64)
    half = n_rot // 2
    i0, i1 = (np.arange(half), np.arange(half) + half) if mode == "neox" else (np.arange(0, n_rot, 2), np.arange(1, n_rot, 2))
    x0, x1 = y[..., i0].copy(), y[..., i1].copy()
    y[..., i0] = x0 * c - x1 * s
    y[..., i1] = x0 * s + x1 * c
    return y


def ref_attention(q, k, v, q_pos, kv_pos, scale, causal=True, window=0, softcap=0.0):
    """softmax(q k^T * scale + mask) v per head, in float64; F16 caches read as their exact values."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    n_tokens, n_head, _ = q.shape
    group = n_head // k.shape[1]
    visible = np.ones((n_tokens, k.shape[0]), bool)
    if kv_pos is not None:
        qp, kp = q_pos[:, None].astype(np.int64), kv_pos[None, :].astype(np.int64)
        visible = np.broadcast_to(kp >= 0, (n_tokens, k.shape[0])).copy()
        if causal:
            visible &= kp <= qp
        if window:
            visible &= kp > qp - window
    out = np.zeros_like(q)
    for h in range(n_head):
        s = q[:, h] @ k[:, h // group].T * scale
        if softcap:
            s = softcap * np.tanh(s / softcap)
        out[:, h] = ref_softmax(s, np.where(visible, 0.0, -np.inf), 1.0) @ v[:, h // group]
    return out




# ---- RoPE ----

ROPE_CASES = [  # (n_tokens, n_heads, head_dim, n_rot)
    (1, 1, 64, 64), (3, 4, 64, 64), (5, 3, 80, 80), (2, 2, 128, 128), (7, 2, 256, 256), (4, 3, 128, 64),
    (2, 1, 80, 34), (1, 5, 2, 2),
]


def rope_bound(x, mscale):
    """|cos|, |sin| <= mscale with float rounding each; x0 c - x1 s rounds twice: <= 4 eps (|x0|+|x1|)
    mscale, bounded here by the row's max."""
    return 8 * EPS * np.abs(x.astype(np.float64)).max() * max(1.0, mscale)


@pytest.mark.parametrize("case", ROPE_CASES)
@pytest.mark.parametrize("mode", ["normal", "neox"])
def test_rope(simd, case, mode):
    n_tokens, n_heads, head_dim, n_rot = case
    rng = np.random.default_rng(seed_of(case, mode))
    x = randn(rng, n_tokens, n_heads, head_dim)
    pos = rng.integers(0, 40000, n_tokens).astype(np.int32)
    ref = ref_rope(x, pos, n_rot, mode, base=10000.0, freq_scale=1.0)
    got = ck.rope(x.copy(), pos, n_rot=n_rot, mode=mode, n_threads=2)
    check(got, ref, rope_bound(x, 1.0), f"rope {mode}")
    assert np.array_equal(got[..., n_rot:], x[..., n_rot:])  # dims past n_rot untouched


def test_rope_normal_is_a_complex_rotation(simd):
    """Normal mode: each pair (x[2i], x[2i+1]) is the complex number x[2i] + j x[2i+1] times
    e^(j pos theta_i) -- an independent check of the reference's sign conventions."""
    rng = np.random.default_rng(11)
    x = randn(rng, 6, 3, 128)
    pos = np.array([0, 1, 5, 100, 4095, 131071], np.int32)
    z = x[..., 0::2].astype(np.float64) + 1j * x[..., 1::2]
    theta = pos[:, None, None] * 500000.0 ** (-np.arange(64) / 64.0)
    z = z * np.exp(1j * theta)
    ref = np.empty(x.shape)
    ref[..., 0::2], ref[..., 1::2] = z.real, z.imag
    check(ck.rope(x.copy(), pos, freq_base=500000.0), ref, rope_bound(x, 1.0), "rope vs complex")
    # position 0 is the identity, exactly
    assert np.array_equal(ck.rope(x[:1].copy(), pos[:1]), x[:1])


@pytest.mark.parametrize("mode", ["normal", "neox"])
def test_rope_scaling_freq_factors_and_yarn(simd, mode):
    rng = np.random.default_rng(5)
    x = randn(rng, 9, 4, 128)
    pos = rng.integers(0, 60000, 9).astype(np.int32)
    ff = rng.uniform(1, 8, 64).astype(np.float32)  # llama3's rope_freqs
    cases = [
        dict(freq_base=10000.0, freq_scale=0.25),
        dict(freq_base=500000.0, freq_scale=1.0, freq_factors=ff),
        dict(freq_base=10000.0, freq_scale=0.125, ext_factor=1.0, attn_factor=1.0, beta_fast=32.0, beta_slow=1.0,
             n_ctx_orig=4096),
        dict(freq_base=1000000.0, freq_scale=0.25, ext_factor=0.6, attn_factor=0.9, beta_fast=24.0, beta_slow=2.0,
             n_ctx_orig=32768, freq_factors=ff),
    ]
    for kw in cases:
        ref = ref_rope(x, pos, 128, mode, base=kw["freq_base"],
                       **{k: v for k, v in kw.items() if k != "freq_base"})
        _, mscale = ref_rope_angles(pos, 128, kw["freq_base"], kw["freq_scale"], None, kw.get("ext_factor", 0.0),
                                    kw.get("attn_factor", 1.0), n_ctx_orig=kw.get("n_ctx_orig", 0))
        got = ck.rope(x.copy(), pos, mode=mode, **kw)
        check(got, ref, rope_bound(x, mscale), f"rope {mode} {kw}")
    # YaRN really moves things: the magnitude factor alone is 1 + 0.1 ln 8
    yarn = ck.rope(x.copy(), pos, mode=mode, **cases[2])
    plain = ck.rope(x.copy(), pos, mode=mode, freq_scale=0.125)
    assert np.abs(yarn - plain).max() > 0.1


@HYPO
@given(n_tokens=st.integers(1, 4), n_heads=st.integers(1, 4), half_rot=st.integers(1, 48), extra=st.integers(0, 9),
       neox=st.booleans(), base=st.sampled_from([10000.0, 500000.0, 1e6]), freq_scale=st.floats(0.05, 1.0),
       seed=st.integers(0, 2**32 - 1), level=st.sampled_from(LEVELS))
def test_rope_hypothesis(n_tokens, n_heads, half_rot, extra, neox, base, freq_scale, seed, level):
    rng = np.random.default_rng(seed)
    n_rot = 2 * half_rot
    x = randn(rng, n_tokens, n_heads, n_rot + extra)
    pos = rng.integers(0, 2**17, n_tokens).astype(np.int32)
    mode = "neox" if neox else "normal"
    got = at_level(level, lambda: ck.rope(x.copy(), pos, n_rot=n_rot, mode=mode, freq_base=base,
                                          freq_scale=freq_scale))
    check(got, ref_rope(x, pos, n_rot, mode, base=base, freq_scale=freq_scale), rope_bound(x, 1.0), "rope")


# ---- attention ----

ATTN_CASES = [  # (n_tokens, n_head, n_head_kv, head_dim, n_kv)
    (1, 1, 1, 64, 1), (1, 9, 3, 64, 37), (4, 4, 4, 80, 300), (3, 8, 1, 128, 257), (5, 4, 2, 256, 33),
    (1, 2, 2, 72, 700), (17, 2, 1, 64, 17), (2, 3, 1, 7, 20), (3, 4, 2, 36, 50), (2, 2, 2, 100, 9),
]  # head_dim 7, 36, 100: the tails of 8- and 16-lane loops


@pytest.mark.parametrize("case", ATTN_CASES)
@pytest.mark.parametrize("cache", ["f32", "f16"])
def test_attention_causal(simd, case, cache):
    n_tokens, n_head, n_head_kv, head_dim, n_kv = case
    rng = np.random.default_rng(seed_of(case, cache))
    q = randn(rng, n_tokens, n_head, head_dim)
    k = randn(rng, n_kv, n_head_kv, head_dim)
    v = randn(rng, n_kv, n_head_kv, head_dim)
    if cache == "f16":
        k, v = k.astype(np.float16), v.astype(np.float16)
    got = ck.attention(q, k, v, n_threads=2)  # default positions: the queries are the last tokens
    scale = 1 / math.sqrt(head_dim)
    ref = ref_attention(q, k, v, np.arange(n_kv - n_tokens, n_kv), np.arange(n_kv), scale)
    check(got, ref, attn_bound(q, k, v, scale), f"attention {cache}")


@pytest.mark.parametrize("cache", ["f32", "f16"])
def test_attention_window_softcap_noncausal_and_slots(simd, cache):
    rng = np.random.default_rng(21)
    n_tokens, n_head, n_head_kv, head_dim, n_kv = 6, 8, 2, 128, 280
    q = randn(rng, n_tokens, n_head, head_dim, scale=2.0)
    k = randn(rng, n_kv, n_head_kv, head_dim)
    v = randn(rng, n_kv, n_head_kv, head_dim)
    if cache == "f16":
        k, v = k.astype(np.float16), v.astype(np.float16)
    # a ring-buffer cache: slots out of position order, two empty slots (-1)
    kv_pos = rng.permutation(n_kv).astype(np.int32) + 1000
    kv_pos[[4, 77]] = -1
    q_pos = np.array([1100, 1150, 1200, 1279, 1279, 1300], np.int32)
    for kw in [dict(), dict(window=64), dict(softcap=3.0), dict(window=20, softcap=50.0), dict(causal=False),
               dict(causal=False, softcap=2.0), dict(scale=0.3)]:
        scale = kw.get("scale", 1 / math.sqrt(head_dim))
        got = ck.attention(q, k, v, q_pos, kv_pos, **kw)
        ref = ref_attention(q, k, v, q_pos, kv_pos, scale, kw.get("causal", True), kw.get("window", 0),
                            kw.get("softcap", 0.0))
        check(got, ref, attn_bound(q, k, v, scale), f"attention {cache} {kw}")


def test_attention_bidirectional_without_positions(simd):
    """bert: every slot visible, no positions needed."""
    rng = np.random.default_rng(8)
    q = randn(rng, 9, 4, 64)
    k, v = randn(rng, 9, 4, 64), randn(rng, 9, 4, 64)
    ref = ref_attention(q, k, v, None, None, 0.125)
    check(ck.attention(q, k, v, causal=False), ref, attn_bound(q, k, v, 0.125))


def test_attention_nothing_visible_gives_zeros(simd):
    rng = np.random.default_rng(9)
    q = randn(rng, 2, 2, 64)
    k, v = randn(rng, 5, 1, 64), randn(rng, 5, 1, 64)
    got = ck.attention(q, k, v, np.array([-1, 10], np.int32), np.arange(5, dtype=np.int32))
    assert np.all(got[0] == 0)
    ref = ref_attention(q, k, v, np.array([-1, 10]), np.arange(5), 0.125)
    check(got, ref, attn_bound(q, k, v, 0.125))
    assert np.all(ck.attention(q, k[:0], v[:0], causal=False) == 0)  # empty cache


@HYPO
@given(n_tokens=st.integers(1, 5), n_head_kv=st.integers(1, 3), group=st.integers(1, 3),
       head_dim=st.sampled_from([1, 7, 16, 33, 64, 80]), n_kv=st.integers(1, 70), window=st.integers(0, 40),
       causal=st.booleans(), f16=st.booleans(), softcap=st.sampled_from([0.0, 5.0]), seed=st.integers(0, 2**32 - 1),
       level=st.sampled_from(LEVELS))
def test_attention_hypothesis(n_tokens, n_head_kv, group, head_dim, n_kv, window, causal, f16, softcap, seed, level):
    rng = np.random.default_rng(seed)
    q = randn(rng, n_tokens, n_head_kv * group, head_dim, scale=rng.uniform(0.1, 3))
    k, v = randn(rng, n_kv, n_head_kv, head_dim), randn(rng, n_kv, n_head_kv, head_dim)
    if f16:
        k, v = k.astype(np.float16), v.astype(np.float16)
    kv_pos = rng.integers(-1, 80, n_kv).astype(np.int32)
    q_pos = rng.integers(0, 80, n_tokens).astype(np.int32)
    scale = 1 / math.sqrt(head_dim)
    got = at_level(level, lambda: ck.attention(q, k, v, q_pos, kv_pos, causal=causal, window=window,
                                               softcap=softcap))
    ref = ref_attention(q, k, v, q_pos, kv_pos, scale, causal, window, softcap)
    check(got, ref, attn_bound(q, k, v, scale), f"attention {level}")


@pytest.mark.parametrize("cache", ["f32", "f16"])
def test_attention_kv_range_sees_only_its_slots(simd, cache):
    """Several sequences in one cache: token t attends over kv_range[t] only, which equals attention
    over that slice alone (positions restart in each sequence, so causality alone would not separate them)."""
    rng = np.random.default_rng(31)
    n_kv, n_head, n_head_kv, d = 90, 6, 2, 64
    k, v = randn(rng, n_kv, n_head_kv, d), randn(rng, n_kv, n_head_kv, d)
    if cache == "f16":
        k, v = k.astype(np.float16), v.astype(np.float16)
    kv_pos = np.concatenate([np.arange(40), np.arange(30), np.full(20, -1)]).astype(np.int32)
    ranges = np.array([[0, 40], [0, 40], [40, 70], [40, 70], [40, 55], [70, 90], [10, 10]], np.int32)
    q_pos = np.array([39, 12, 29, 3, 14, 0, 5], np.int32)
    q = randn(rng, len(q_pos), n_head, d)
    for kw in [dict(), dict(window=8), dict(softcap=4.0)]:
        got = ck.attention(q, k, v, q_pos, kv_pos, kv_range=ranges, **kw)
        for t, (lo, hi) in enumerate(ranges[:-1]):
            ref = ref_attention(q[t:t + 1], k[lo:hi], v[lo:hi], q_pos[t:t + 1], kv_pos[lo:hi], 1 / math.sqrt(d),
                                True, kw.get("window", 0), kw.get("softcap", 0.0))
            check(got[t:t + 1], ref, attn_bound(q, k, v, 1 / math.sqrt(d)), f"kv_range token {t} {kw}")
    assert np.all(got[6] == 0)  # an empty range sees nothing
    with pytest.raises(ValueError, match="kv_range"):
        ck.attention(q, k, v, q_pos, kv_pos, kv_range=ranges[:3])
    with pytest.raises(ValueError, match="kv_range"):
        ck.attention(q, k, v, q_pos, kv_pos, kv_range=ranges + 1)


def test_cache_then_attention_round_trip(simd):
    """Fill an F16 cache token by token as a model would, attend, compare with the same rows in F32."""
    rng = np.random.default_rng(4)
    n_kv, n_head_kv, d = 40, 2, 64
    k16, v16 = np.zeros((n_kv, n_head_kv, d), np.float16), np.zeros((n_kv, n_head_kv, d), np.float16)
    ks, vs = randn(rng, n_kv, n_head_kv, d), randn(rng, n_kv, n_head_kv, d)
    for t in range(0, n_kv, 8):
        ck.copy_to_cache(k16, ks[t:t + 8].reshape(-1, n_head_kv * d), np.arange(t, min(t + 8, n_kv), dtype=np.int32))
        ck.copy_to_cache(v16, vs[t:t + 8], np.arange(t, min(t + 8, n_kv), dtype=np.int32))
    q = randn(rng, 1, 4, d)
    got = ck.attention(q, k16, v16)
    ref = ref_attention(q, ks.astype(np.float16), vs.astype(np.float16), np.array([n_kv - 1]), np.arange(n_kv), 0.125)
    check(got, ref, attn_bound(q, ks, vs, 0.125))




# ---- attention inside packed sequences (an encoder batch) ----

PACKED_CASES = [  # (sequence lengths, n_head, head_dim)
    ([1], 1, 64), ([5, 1, 17], 4, 32), ([3, 0, 8, 0], 2, 7), ([64, 2, 33], 12, 32), ([300], 2, 80),
]


@pytest.mark.parametrize("case", PACKED_CASES)
def test_attention_packed(simd, case):
    lengths, n_head, head_dim = case
    rng = np.random.default_rng(seed_of(case))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    n = int(starts[-1])
    q, k, v = (randn(rng, n, n_head, head_dim) for _ in range(3))
    got = ck.attention_packed(q, k, v, starts, n_threads=2)
    scale = 1 / math.sqrt(head_dim)
    for a, b in zip(starts[:-1], starts[1:]):
        if b > a:  # each sequence alone, bidirectional: the others must not leak in
            ref = ref_attention(q[a:b], k[a:b], v[a:b], None, None, scale, causal=False)
            check(got[a:b], ref, attn_bound(q[a:b], k[a:b], v[a:b], scale), f"packed {case} [{a}, {b})")


def test_attention_packed_is_ck_attention_per_sequence(simd):
    """The same per-head kernel as attention(): bit-identical to it on each sequence alone."""
    rng = np.random.default_rng(8)
    starts = np.array([0, 7, 20, 21])
    q, k, v = (randn(rng, 21, 3, 40) for _ in range(3))
    got = ck.attention_packed(q, k, v, starts)
    for a, b in zip(starts[:-1], starts[1:]):
        assert np.array_equal(got[a:b], ck.attention(q[a:b], k[a:b], v[a:b], causal=False, n_threads=1))


def test_attention_packed_errors():
    q = np.zeros((4, 2, 8), np.float32)
    with pytest.raises(ValueError, match="seq_start"):
        ck.attention_packed(q, q.copy(), q.copy(), np.array([0, 3]))  # ends short of n_tokens
    with pytest.raises(ValueError, match="seq_start"):
        ck.attention_packed(q, q.copy(), q.copy(), np.array([0, 3, 2, 4]))  # falls
    with pytest.raises(ValueError, match="one shape"):
        ck.attention_packed(q, q[:3].copy(), q.copy(), np.array([0, 4]))
    with pytest.raises(ValueError, match="overlap"):
        ck.attention_packed(q, q.copy(), q.copy(), np.array([0, 4]), out=q)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("group", [2, 3, 4, 5])
def test_grouped_heads_give_each_heads_bits(level, group):
    """The query heads that share a kv head, 64 wide, run together where a level has a grouped
    kernel (AVX-512: each cache row widened once for the group); each head must come out with the
    bits it gets on its own (the same cache with that kv head repeated per query head, one head a
    group), with kv ranges, windows, soft-capping, an empty range and a head whose slots are all
    hidden from some tokens."""
    rng = np.random.default_rng(group)
    n_kv, n_head_kv, d = 75, 2, 64
    k, v = randn(rng, n_kv, n_head_kv, d).astype(np.float16), randn(rng, n_kv, n_head_kv, d).astype(np.float16)
    kv_pos = np.concatenate([np.arange(40), np.arange(30), np.full(5, -1)]).astype(np.int32)
    ranges = np.array([[0, 40], [40, 70], [40, 55], [10, 10], [70, 75], [0, 40]], np.int32)
    q_pos = np.array([39, 29, 14, 5, 3, 0], np.int32)
    q = randn(rng, len(q_pos), n_head_kv * group, d, scale=2.0)
    k1, v1 = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # kv head h // group for head h
    for kw in [dict(kv_range=ranges), dict(kv_range=ranges, window=6), dict(kv_range=ranges, softcap=3.0), dict()]:
        grouped = at_level(level, lambda: ck.attention(q, k, v, q_pos, kv_pos, **kw))
        alone = at_level(level, lambda: ck.attention(q, k1, v1, q_pos, kv_pos, **kw))
        assert np.array_equal(grouped, alone), (level, kw)
        if "kv_range" in kw:
            assert np.all(grouped[3] == 0) and np.all(grouped[4] == 0)  # an empty range; only empty slots
