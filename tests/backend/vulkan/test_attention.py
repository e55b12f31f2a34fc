"""Attention over the Vulkan KV cache (uint words: F32 bits or pairs of halves) against the CPU's
gk_attention: decode and prompt batches, GQA, empty slots, positions out of slot order, sliding
window, soft-cap, per-token slot ranges, tokens that see nothing, odd head sizes."""
from __future__ import annotations

import numpy as np
import pytest
from op_checks import EPS, check, randn, seed_of
from vulkan_runs import poisoned

from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.backend.vulkan import ops
from gpt4all_core.backend.vulkan.context import make_params, run_dispatch


def make_cache(rng, n_ctx, n_head_kv, head_dim, f16):
    """K and V [n_ctx, n_head_kv, head_dim] as the CPU holds them and as device words."""
    k, v = randn(rng, n_ctx, n_head_kv, head_dim), randn(rng, n_ctx, n_head_kv, head_dim)
    if f16:
        k, v = k.astype(np.float16), v.astype(np.float16)
    return k, v, k.reshape(-1).view(np.uint32), v.reshape(-1).view(np.uint32)


def bound(q, k, v, scale, softcap):
    """Scores are float32 sums of head_dim products (either side: ~head_dim eps of sum |q k|),
    and move every softmax weight by twice that, relatively; the output, a convex mix of v rows,
    by that times max |v|; plus the accumulation over the slots (n eps |v|) and a few roundings.
    A soft-cap only shrinks score differences, but its tanh adds a few eps of the cap."""
    qa, ka = np.abs(q.astype(np.float64)), np.abs(k.astype(np.float64))
    group = q.shape[1] // k.shape[1]
    smax = max((qa[:, h] @ ka[:, h // group].T).max(initial=0) for h in range(q.shape[1])) * abs(scale)
    score_err = 2 * (q.shape[2] + 4) * smax * EPS + 8 * softcap * EPS
    return (2 * score_err + (k.shape[0] + 16) * EPS) * np.abs(v.astype(np.float64)).max(initial=0)


def run_attention(vk, q, kw, vw, kv_pos, n_kv, q_pos, n_head_kv, f16, max_cols, window=0, softcap=0.0,
                  kv_range=None):
    n_tokens, n_head, head_dim = q.shape
    scale = 1.0 / np.sqrt(head_dim)
    d = ops.attention(vk.caps, n_head, n_head_kv, head_dim, f16, window, scale, softcap, kv_range is not None,
                      max_cols)
    qq = poisoned(max_cols, n_head, head_dim)
    qq[:n_tokens] = q
    extra = {} if kv_range is None else {"kv_lo": kv_range[:, 0], "kv_hi": kv_range[:, 1]}
    params = make_params(max_cols, n_tokens=n_tokens, n_kv=n_kv, pos=q_pos, **extra)
    out, = run_dispatch(vk, d, [qq, kw, vw, kv_pos, poisoned(max_cols, n_head, head_dim)], [4], params=params)
    assert np.isnan(out[n_tokens:]).all()  # columns past the batch are not written
    return out[:n_tokens], scale


def cpu_attention(q, k, v, q_pos, kv_pos, n_kv, scale, window=0, softcap=0.0, kv_range=None):
    return ck.attention(q, k[:n_kv], v[:n_kv], q_pos=np.asarray(q_pos, np.int32), kv_pos=kv_pos[:n_kv],
                        scale=scale, causal=True, window=window, softcap=softcap, kv_range=kv_range)


@pytest.mark.parametrize("f16", [False, True])
@pytest.mark.parametrize("head_dim,n_head,n_head_kv", [(64, 8, 2), (80, 3, 3), (256, 4, 1), (10, 4, 2)])
def test_decode_one_token_over_a_long_cache(vk, head_dim, n_head, n_head_kv, f16):
    """Several tiles of slots, empty slots and slots past n_kv full of NaN that must stay unread;
    head sizes on the 16-byte path (64, 80, 256) and off it (10)."""
    rng = np.random.default_rng(seed_of("decode", head_dim, n_head, f16))
    n_ctx, n_kv = 420, 397
    k, v, kw, vw = make_cache(rng, n_ctx, n_head_kv, head_dim, f16)
    kw, vw = kw.copy(), vw.copy()
    row = n_head_kv * head_dim // (2 if f16 else 1)
    kw[n_kv * row:] = 0x7FC07FC0  # NaN as float and as halves
    vw[n_kv * row:] = 0x7FC07FC0
    kv_pos = rng.permutation(n_ctx).astype(np.int32)  # positions in no slot order
    kv_pos[rng.choice(n_kv, 40, replace=False)] = -1
    q = randn(rng, 1, n_head, head_dim, scale=2.0)
    q_pos = [int(kv_pos[:n_kv].max()) + 1]
    out, scale = run_attention(vk, q, kw, vw, kv_pos, n_kv, q_pos, n_head_kv, f16, max_cols=2)
    ref = cpu_attention(q, k, v, q_pos, kv_pos, n_kv, scale)
    check(out, ref, bound(q, k[:n_kv], v[:n_kv], scale, 0.0), "decode")


@pytest.mark.parametrize("f16", [False, True])
@pytest.mark.parametrize("window,softcap", [(0, 0.0), (9, 0.0), (0, 5.0), (17, 50.0)])
def test_prompt_batch_is_causal_with_window_and_softcap(vk, window, softcap, f16):
    """37 new tokens after 100 cached ones, their own rows already stored in the cache."""
    rng = np.random.default_rng(seed_of("prompt", window, softcap, f16))
    n_head, n_head_kv, head_dim, n_past, n_tokens = 4, 2, 64, 100, 37
    n_kv = n_past + n_tokens
    k, v, kw, vw = make_cache(rng, n_kv + 5, n_head_kv, head_dim, f16)
    kv_pos = np.r_[np.arange(n_kv), -np.ones(5)].astype(np.int32)
    q = randn(rng, n_tokens, n_head, head_dim, scale=3.0)
    q_pos = np.arange(n_past, n_kv)
    out, scale = run_attention(vk, q, kw, vw, kv_pos, n_kv, q_pos, n_head_kv, f16, max_cols=40,
                               window=window, softcap=softcap)
    ref = cpu_attention(q, k, v, q_pos, kv_pos, n_kv, scale, window=window, softcap=softcap)
    check(out, ref, bound(q, k[:n_kv], v[:n_kv], scale, softcap), "prompt")


@pytest.mark.parametrize("f16", [False, True])
def test_kv_ranges_and_tokens_that_see_nothing(vk, f16):
    """Three sequences sharing one cache decode in one batch, each in its own slot range; a token
    with an empty range, one whose range holds only empty slots, and one whose window excludes
    every slot get zeros."""
    rng = np.random.default_rng(seed_of("ranges", f16))
    n_head, n_head_kv, head_dim, n_kv = 6, 3, 64, 300
    k, v, kw, vw = make_cache(rng, n_kv, n_head_kv, head_dim, f16)
    kv_pos = np.r_[np.arange(150), np.arange(100), np.arange(50)].astype(np.int32)
    kv_pos[255:270] = -1
    kv_range = np.array([[0, 150], [150, 250], [250, 300], [10, 10], [255, 270], [0, 150]], np.int32)
    q_pos = [149, 99, 49, 10, 12, 5000]
    q = randn(rng, len(q_pos), n_head, head_dim)
    out, scale = run_attention(vk, q, kw, vw, kv_pos, n_kv, q_pos, n_head_kv, f16, max_cols=8, window=400,
                               kv_range=kv_range)
    ref = cpu_attention(q, k, v, q_pos, kv_pos, n_kv, scale, window=400, kv_range=kv_range)
    check(out, ref, bound(q, k, v, scale, 0.0), "kv ranges")
    assert (out[3:] == 0).all() and (np.abs(out[:3]) > 0).any(axis=-1).all()


def split_case(caps, f16: bool, *tag):
    """What the split-attention tests run: chunks of whole tiles over 700 slots (every 7th empty),
    some chunks past the slots; three tokens with their own ranges and a window, the last seeing
    nothing, in a batch of 4 columns (q poisoned past the 3). Returns (dispatch args, q, kw, vw,
    kv_pos, params, reference, bound)."""
    rng = np.random.default_rng(seed_of("split", f16, *tag))
    n_head, n_head_kv, head_dim, n_kv, max_cols = 4, 2, 64, 700, 4
    k, v, kw, vw = make_cache(rng, n_kv, n_head_kv, head_dim, f16)
    kv_pos = np.arange(n_kv, dtype=np.int32)
    kv_pos[::7] = -1
    kv_range = np.array([[0, 700], [0, 650], [100, 390]], np.int32)
    q_pos = [699, 300, 50]  # the last sees nothing in its range
    q = randn(rng, 3, n_head, head_dim, scale=2.0)
    scale = 1.0 / np.sqrt(head_dim)
    args = (caps, n_head, n_head_kv, head_dim, f16, 500, scale, 0.0, True, max_cols)
    params = make_params(max_cols, n_tokens=3, n_kv=n_kv, pos=q_pos, kv_lo=kv_range[:, 0], kv_hi=kv_range[:, 1])
    qq = poisoned(max_cols, n_head, head_dim)
    qq[:3] = q
    ref = cpu_attention(q, k, v, q_pos, kv_pos, n_kv, scale, window=500, kv_range=kv_range)
    return args, qq, kw, vw, kv_pos, params, ref, bound(q, k, v, scale, 0.0)


@pytest.mark.parametrize("f16", [False, True])
@pytest.mark.parametrize("n_split", [1, 5])
def test_split_attention_matches_the_cpu(vk, n_split, f16):
    """Chunks merged by a second dispatch; the scratch starts poisoned."""
    args, q, kw, vw, kv_pos, params, ref, err = split_case(vk.caps, f16, n_split)
    first, merge = ops.attention_split(*args, n_split)
    scratch = poisoned(ops.attention_scratch_floats(4, 64, 4, n_split))
    scratch, = run_dispatch(vk, first, [q, kw, vw, kv_pos, scratch], [4], params=params)
    out, = run_dispatch(vk, merge, [scratch, poisoned(*q.shape)], [1], params=params)
    check(out[:3], ref, err, f"{n_split} splits")
    assert (out[2] == 0).all() and np.isnan(out[3:]).all()


def test_decode_dispatch_shape():
    """One workgroup per (head, token), at least one invocation per pair of dims."""
    caps = ops.Caps(name="test", subgroup_size=32)
    d = ops.attention(caps, 32, 8, 128, True, 0, 0.088, 0.0, False, 512)
    assert d.groups == (32, 512, 1) and d.spec[:3] == (128, 128, 1)
    assert ops.attention(caps, 8, 8, 512, False, 0, 0.04, 0.0, False, 1).spec[0] == 256
    first, merge = ops.attention_split(caps, 32, 8, 128, True, 0, 0.088, 0.0, False, 1, 8)
    assert first.groups == (32, 1, 8) and first.spec == d.spec and merge.groups == (32, 1, 1)


@pytest.mark.parametrize("f16", [False, True])
def test_split_attention_merged_by_its_last_workgroup(vk, f16):
    """attention_split_merged (one dispatch: the last part of each (head, token) to finish merges)
    on the case above, whose first two tokens see more slots than a part's least (4 x 128: merged
    from parts) and whose third fewer (its first part alone writes the output); run twice on one
    counter buffer, which each pass must leave zero (a stale count would merge early, or never)."""
    n_split = 5
    args, q, kw, vw, kv_pos, params, ref, err = split_case(vk.caps, f16, "merged")
    d = ops.attention_split_merged(*args, n_split)
    assert d.shader == "attention_split_merged" and d.groups == (4, 4, n_split)
    scratch = poisoned(ops.attention_scratch_floats(4, 64, 4, n_split))
    counters = np.zeros(4 * 4, np.uint32)
    for _ in range(2):
        out, counters = run_dispatch(vk, d, [q, kw, vw, kv_pos, scratch, counters, poisoned(*q.shape)], [6, 5],
                                     params=params)
        check(out[:3], ref, err, "merged splits")
        assert (out[2] == 0).all() and np.isnan(out[3:]).all()
        assert (counters == 0).all()


@pytest.mark.parametrize("f16", [False, True])
def test_merged_split_attention_over_a_short_context_is_one_part(vk, f16):
    """Two decode tokens over 300 slots (fewer than a part's least, 4 x 128): the first part of
    each (head, token) writes the output alone, against the CPU; the scratch is never written
    (it stays poisoned) and the counters are never touched."""
    rng = np.random.default_rng(seed_of("short", f16))
    n_head, n_head_kv, head_dim, n_kv, n_split = 4, 2, 64, 300, 5
    k, v, kw, vw = make_cache(rng, n_kv, n_head_kv, head_dim, f16)
    kv_pos = np.arange(n_kv, dtype=np.int32)
    kv_pos[::5] = -1
    q_pos = [299, 120]
    q = randn(rng, 2, n_head, head_dim, scale=2.0)
    scale = 1.0 / np.sqrt(head_dim)
    d = ops.attention_split_merged(vk.caps, n_head, n_head_kv, head_dim, f16, 0, scale, 0.0, False, 2, n_split)
    params = make_params(2, n_tokens=2, n_kv=n_kv, pos=q_pos)
    scratch = poisoned(ops.attention_scratch_floats(n_head, head_dim, 2, n_split))
    counters = np.zeros(2 * n_head, np.uint32)
    out, scratch_after, counters_after = run_dispatch(
        vk, d, [q, kw, vw, kv_pos, scratch, counters, poisoned(*q.shape)], [6, 4, 5], params=params)
    ref = cpu_attention(q, k, v, q_pos, kv_pos, n_kv, scale)
    check(out, ref, bound(q, k, v, scale, 0.0), "one part")
    assert np.isnan(scratch_after).all() and (counters_after == 0).all()
