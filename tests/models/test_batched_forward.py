"""Several sequences in one forward pass (continuous batching): each token attends only to its own
sequence's slots (kv_ranges), logits come back for the rows asked for (logit_rows), and since every
product is batch-invariant the logits are bit for bit those of running each sequence alone. On SmolLM2 (Q4_1 + Q8_0: both forms of the product) and
Gemma 3 (K-quants, sliding-window blocks)."""
from __future__ import annotations

import numpy as np
import pytest

from gpt4all_core import models

REGION = 48  # cache slots per sequence


@pytest.fixture(scope="module", params=["smollm2", "gemma3"])
def model(request):
    path = request.getfixturevalue(f"{request.param}_path")
    with models.load(path) as m:
        yield m


def solo(model, prompt, nxt):
    """Each sequence alone in its own cache: prompt logits, then the logits after one more token."""
    cache = model.new_cache(REGION)
    sl = np.arange(len(prompt), dtype=np.int32)
    first = model.decoder.forward(cache, np.array(prompt, np.int32), sl, sl, len(prompt), len(prompt))
    at = np.array([len(prompt)], np.int32)
    second = model.decoder.forward(cache, np.array([nxt], np.int32), at, at, len(prompt) + 1, 1)
    return first, second[0]


def batched(model, prompts, nxt):
    """All prompts in one pass, each in its own region of one cache; then one decode step for all."""
    cache = model.new_cache(REGION * len(prompts))
    toks, pos, slots, ranges = [], [], [], []
    for i, p in enumerate(prompts):
        base = i * REGION
        for j, t in enumerate(p):
            toks.append(t), pos.append(j), slots.append(base + j), ranges.append((base, base + len(p)))
    n = len(toks)
    first = model.decoder.forward(cache, np.array(toks, np.int32), np.array(pos, np.int32), np.array(slots, np.int32),
                                  cache.n_ctx, kv_ranges=np.array(ranges, np.int32), logit_rows=np.arange(n))
    lens = np.array([len(p) for p in prompts], np.int32)
    slots = np.arange(len(prompts), dtype=np.int32) * REGION + lens
    ranges = np.stack([slots - lens, slots + 1], 1).astype(np.int32)
    second = model.decoder.forward(cache, np.array(nxt, np.int32), lens, slots, cache.n_ctx, kv_ranges=ranges,
                                   logit_rows=np.arange(len(prompts)))
    splits = np.cumsum(lens)[:-1]
    return np.split(first, splits), second


@pytest.mark.parametrize("lengths", [(5, 9, 3, 1), (1, 1), (17, 2, 30)])
def test_batched_sequences_equal_solo_runs_bit_for_bit(model, lengths):
    rng = np.random.default_rng(sum(lengths))
    prompts = [rng.integers(0, model.n_vocab, n).tolist() for n in lengths]
    nxt = rng.integers(0, model.n_vocab, len(prompts)).tolist()
    firsts, seconds = batched(model, prompts, nxt)
    for i, (p, t) in enumerate(zip(prompts, nxt)):
        f, s = solo(model, p, t)
        assert np.array_equal(firsts[i], f), f"sequence {i}: prompt logits differ by {np.abs(firsts[i] - f).max()}"
        assert np.array_equal(seconds[i], s), f"sequence {i}: decode logits differ by {np.abs(seconds[i] - s).max()}"


def test_a_token_sees_nothing_outside_its_range(model):
    """Filling a neighbour's region with other tokens changes nothing for this sequence."""
    rng = np.random.default_rng(4)
    prompt = rng.integers(0, model.n_vocab, 7).tolist()
    out = []
    for neighbour in (rng.integers(0, model.n_vocab, 9), rng.integers(0, model.n_vocab, 9)):
        firsts, _ = batched(model, [prompt, neighbour.tolist()], [1, 2])
        out.append(firsts[0])
    assert np.array_equal(out[0], out[1])


def test_logit_rows_pick_rows_in_the_order_asked(model):
    rng = np.random.default_rng(5)
    toks = rng.integers(0, model.n_vocab, 6).astype(np.int32)
    sl = np.arange(6, dtype=np.int32)
    all_rows = model.decoder.forward(model.new_cache(8), toks, sl, sl, 6, 6)
    picked = model.decoder.forward(model.new_cache(8), toks, sl, sl, 6, logit_rows=np.array([4, 1]))
    assert np.array_equal(picked, all_rows[[4, 1]])


@pytest.mark.parametrize("kw, match", [
    (dict(kv_ranges=np.array([[0, 4], [0, 4]])), "shape"),
    (dict(kv_ranges=np.array([[0, 4], [0, 4], [3, 2]])), "lo <= hi"),
    (dict(kv_ranges=np.array([[0, 4], [0, 4], [0, 2]])), "own kv_ranges"),
    (dict(logit_rows=np.array([0, 3])), "logit_rows"),
])
def test_bad_batch_arguments_are_named(model, kw, match):
    toks = np.array([1, 2, 3], np.int32)
    sl = np.arange(3, dtype=np.int32)
    with pytest.raises((ValueError, TypeError), match=match):
        model.decoder.forward(model.new_cache(8), toks, sl, sl, 4, **kw)
