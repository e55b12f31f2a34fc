"""Weights prefetched into L2 (gpt4all_core/backend/vulkan/prefetch.py, shaders/prefetch.comp):
the shader reads exactly its range, the plan puts each stage's prefetches after its last op, for
the next stages' weights in reading order and within the budget, and a decoder with prefetches
gives the same bits with the same barriers; the setting is checked by name."""
from __future__ import annotations

import numpy as np
import pytest
from model_files import random_model

from gpt4all_core import models
from gpt4all_core.backend.vulkan import ops, prefetch
from gpt4all_core.backend.vulkan.context import get_context, run_dispatch
from gpt4all_core.backend.vulkan.devices import select_device

HIT = 0x9E3779B9  # the constant shaders/prefetch.comp writes its fold to the sink on


@pytest.fixture(scope="module")
def device():
    return select_device("vulkan:0")


def folds(src4: np.ndarray, offset4: int, n4: int, wg: int) -> dict[tuple[int, int], int]:
    """{(workgroup, invocation): the XOR of the words it reads}, as the shader walks its range."""
    out = {}
    per = ops.PREFETCH_PER
    for i in range(n4):
        g, r = divmod(i, wg * per)
        key = (g, r % wg)
        out[key] = out.get(key, 0) ^ int(np.bitwise_xor.reduce(src4[offset4 + i]))
    return out


def test_the_shader_reads_exactly_its_range():
    """Random words, a range that starts past 0 and ends mid-workgroup. The invocation that reads
    the last uvec4 of the range is made to fold to the constant, and so is one that would only if
    it also read the uvec4 after the range: only the first writes its sink word."""
    ctx = get_context(0)
    rng = np.random.default_rng(5)
    n_total4, offset4, n4 = 3000, 37, 2500
    src4 = rng.integers(0, 2**32, size=(n_total4, 4), dtype=np.uint64).astype(np.uint32)
    d = ops.prefetch(ctx.caps, offset4, n4)
    wg = d.spec[0]
    last = n4 - 1
    owner = (last // (wg * ops.PREFETCH_PER), last % wg)
    src4[offset4 + last, 0] ^= folds(src4, offset4, n4, wg)[owner] ^ HIT  # owner's fold becomes HIT
    past = offset4 + n4  # the first uvec4 after the range, as its would-be reader would see it
    nxt = (n4 // (wg * ops.PREFETCH_PER), n4 % wg)
    fold_next = folds(src4, offset4, n4, wg).get(nxt, 0)
    src4[past, 0] ^= int(np.bitwise_xor.reduce(src4[past])) ^ fold_next ^ HIT
    expected = folds(src4, offset4, n4, wg)
    assert expected[owner] == HIT and expected.get(nxt, 0) != HIT
    sink = np.zeros(256, np.uint32)
    (got,) = run_dispatch(ctx, d, [src4.reshape(-1), sink], [1])
    want = np.zeros(256, np.uint32)
    for (_, lane), value in expected.items():
        if value == HIT:
            want[lane] = HIT
    assert np.array_equal(got, want)
    assert got[owner[1]] == HIT and (nxt[1] == owner[1] or got[nxt[1]] == 0)


class W:
    """A weight tensor of n words."""

    def __init__(self, name: str, words: int):
        self.name, self.words = name, words

    def __repr__(self):
        return self.name


def words(w: W) -> int:
    return w.words


MIB4 = (1 << 20) // 16  # uvec4s in a MiB


def covered(chunks: dict, w: W) -> list[tuple[int, int]]:
    return [(c.offset4, c.n4) for ops_chunks in chunks.values() for c in ops_chunks if c.weights is w]


def test_each_stage_prefetches_the_next_stages_weights_after_its_last_op():
    """Stages: [0 q k v] [3 attention] [4 o] [5 gate_up] [6 down]: with room for everything, stage 0
    prefetches o (its next stage with weights is two on) after v, ..., and nothing prefetches the
    first stage's own weights; each tensor is covered once, from its start, in whole."""
    q, k, v, o, gu, dn = W("q", 4 * MIB4), W("k", 4 * MIB4), W("v", 4 * MIB4), W("o", 4 * MIB4), \
        W("gu", 16 * MIB4), W("down", 8 * MIB4)
    barriers = [True, False, False, True, True, True, True]
    weights = [q, k, v, None, o, gu, dn]
    chunks = prefetch.plan(barriers, weights, words, 64 << 20)
    assert sorted(chunks) == [2, 3, 4]  # the last ops of stages with something left to prefetch
    assert [c.weights for c in chunks[2]] == [o]  # stage 1 (attention) has none; lookahead 2
    assert [c.weights for c in chunks[3]] == [gu]
    assert [c.weights for c in chunks[4]] == [dn]
    for w in (q, k, v):
        assert covered(chunks, w) == []
    for w in (o, gu, dn):
        assert covered(chunks, w) == [(0, w.words // 4)]
    for op_chunks in chunks.values():
        assert [c.sink for c in op_chunks] == list(range(len(op_chunks)))


def test_the_budget_bounds_what_waits_in_l2_and_a_tensor_continues_where_it_stopped():
    """Stages [a] [b: 2 MiB] [c: 4 MiB] [d], a 3 MiB budget: after a, all of b and 1 MiB of c;
    after b (its 2 MiB read), c's next 2 MiB; never more than 3 MiB prefetched and not yet read."""
    a, b, c, d = W("a", MIB4 * 4), W("b", 2 * MIB4 * 4), W("c", 4 * MIB4 * 4), W("d", MIB4 * 4)
    chunks = prefetch.plan([True] * 4, [a, b, c, d], words, 3 << 20)
    assert covered(chunks, b) == [(0, 2 * MIB4)]
    assert covered(chunks, c) == [(0, MIB4), (MIB4, 2 * MIB4)]
    assert covered(chunks, d) == [(0, MIB4)]  # after c: c's 3 MiB read
    ahead = 0
    for stage, w in enumerate([a, b, c, d]):  # prefetched and not yet read, stage by stage
        ahead -= sum(n4 for _, n4 in covered(chunks, w)) * 16
        ahead += sum(ch.n4 * 16 for ch in chunks.get(stage, ()))
        assert 0 <= ahead <= 3 << 20


def test_a_stage_of_many_weights_uses_at_most_sinks_dispatches():
    ws = [W(f"w{i}", MIB4) for i in range(prefetch.SINKS + 3)]
    barriers = [True] + [True] + [False] * (len(ws) - 1)
    chunks = prefetch.plan(barriers, [None] + ws, words, 256 << 20)
    assert len(chunks[0]) == prefetch.SINKS
    assert [c.weights for c in chunks[0]] == ws[:prefetch.SINKS]


def test_no_budget_no_prefetch(monkeypatch):
    assert prefetch.plan([True, True], [W("a", 64), W("b", 64)], words, 0) == {}
    monkeypatch.delenv(prefetch.PREFETCH_ENV, raising=False)
    assert prefetch.budget_bytes() == 0
    monkeypatch.setenv(prefetch.PREFETCH_ENV, "24")
    assert prefetch.budget_bytes() == 24 << 20
    for bad in ("-1", "lots", "4096"):
        monkeypatch.setenv(prefetch.PREFETCH_ENV, bad)
        with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_PREFETCH"):
            prefetch.budget_bytes()


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K"])
def test_a_decoder_with_prefetches_gives_the_same_bits_with_the_same_barriers(device, monkeypatch, qtype):
    """One-token steps and a prompt with $GPT4ALL_CORE_VULKAN_PREFETCH=1 (MiB: less than the
    random model's weights, so tensors are split over stages) against none: the same logits, the
    same barriers, and prefetch dispatches added."""
    monkeypatch.setenv("GPT4ALL_CORE_VULKAN_FLAGS", "0")
    tokens = list(range(100, 110))
    got, recorded = {}, {}
    for value in ("0", "1"):
        monkeypatch.setenv(prefetch.PREFETCH_ENV, value)
        with models.load(random_model("llama", n_embd=256, n_ff=512, qtype=qtype), device=device) as model:
            dec = model.decoder
            cache = model.new_cache(32, f16=True)
            pos = np.arange(4)
            rows = [dec.forward(cache, np.array(tokens[:4]), pos, pos, 4, 1)[0]]
            for i in range(4, len(tokens)):
                rows.append(dec.forward(cache, np.array([tokens[i]]), np.array([i]), np.array([i]), i + 1, 1)[0])
            got[value], recorded[value] = np.array(rows), dict(dec.barriers)
    assert np.array_equal(got["0"], got["1"])
    for key, (barriers, dispatches) in recorded["0"].items():
        assert recorded["1"][key][0] == barriers
        assert recorded["1"][key][1] > dispatches
