"""engine.Session: prefix reuse, batching and GPT4All's context erase, checked against a float64
reference that keeps keys before RoPE and simply deletes erased entries (so the session's
move-and-re-rotate shift must be equivalent to it). Random-weight F32 models keep the check
free of quantization noise. The Gemma 3 one has local blocks (a sliding window of 6, smaller than
most contexts here) rotating with base 10000 and a global block with base 1e6: a shift that
re-rotated every block alike would fail it."""
from __future__ import annotations

import numpy as np
import pytest
from gemma3_reference import ReferenceGemma3
from llama_reference import ReferenceLlama
from model_files import random_model

from gpt4all_core import models
from gpt4all_core.engine.session import Session

TOL = 1e-4  # float32 C against float64 numpy, logits of magnitude ~5


GEMMA3 = dict(n_block=3, head_dim=48, window=6, swa_pattern=3, tied=True)


@pytest.fixture(scope="module", params=["llama", "qwen2", "gemma3"])
def pair(request):
    if request.param == "gemma3":
        path = random_model("gemma3", qtype="F32", **GEMMA3)
        reference = ReferenceGemma3(path)
    else:
        path = random_model(request.param, qtype="F32")
        reference = ReferenceLlama(path)
    model = models.load(path)
    yield model, reference
    model.close()


def tokens(n: int, seed: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, 30000, n)]


def test_batches_match_reference(pair):
    model, ref = pair
    ref.reset()
    prompt = tokens(37, 1)
    expected = ref.feed(prompt)[-1]
    for n_batch in (1, 5, 64):
        s = Session(model, n_ctx=64, n_batch=n_batch, f16_cache=False)
        assert np.abs(s.prompt(prompt) - expected).max() < TOL, n_batch


def test_prefix_reuse_gives_fresh_logits(pair):
    model, _ = pair
    a, b = tokens(20, 2), tokens(9, 3)
    s = Session(model, n_ctx=64, n_batch=4)
    s.prompt(a)
    evaluated = []
    reused = s.prompt(a + b, progress=lambda done, total: evaluated.append(total))
    assert evaluated and evaluated[-1] == len(b)  # only the new tokens ran
    fresh = Session(model, n_ctx=64, n_batch=4).prompt(a + b)
    np.testing.assert_array_equal(reused, fresh)  # rows are computed independently: bit-exact
    # a prompt that diverges inside the cached part re-evaluates from there on
    c = a[:10] + tokens(5, 4)
    np.testing.assert_array_equal(s.prompt(c), Session(model, n_ctx=64, n_batch=4).prompt(c))
    assert s.tokens == c
    # the same prompt again: the last token is run again for its logits
    np.testing.assert_array_equal(s.prompt(c), Session(model, n_ctx=64, n_batch=4).prompt(c))


@pytest.mark.parametrize("n_ctx,n_batch,erase", [(16, 3, 0.5), (24, 8, 0.75), (10, 1, 0.1)])
def test_long_generation_through_erasures(pair, n_ctx, n_batch, erase):
    """Tokens fed past the context several times over: each step's logits equal the reference's
    after deleting the same tokens; the first token always stays."""
    model, ref = pair
    ref.reset()
    s = Session(model, n_ctx=n_ctx, n_batch=n_batch, context_erase=erase, f16_cache=False)
    stream = tokens(6 * n_ctx, 5)
    worst, erasures = 0.0, 0
    for i in range(0, len(stream), n_batch):
        batch = stream[i:i + n_batch]
        before = s.n_erased
        got = s.feed(batch)
        dropped = s.n_erased - before
        if dropped:
            erasures += 1
            assert dropped >= min(s.n_past, int(n_ctx * erase))  # GPT4All drops n_ctx * context_erase at once
            ref.erase(1, dropped)
        worst = max(worst, float(np.abs(got - ref.feed(batch)[-1]).max()))
        assert s.n_past <= n_ctx and s.tokens[0] == stream[0]
    assert erasures >= 3
    assert worst < TOL


def test_two_token_context(pair):
    """The smallest context: every new token erases the one before it, the first stays."""
    model, ref = pair
    ref.reset()
    s = Session(model, n_ctx=2, n_batch=8, context_erase=0.5, f16_cache=False)
    stream = tokens(7, 6)
    for i, t in enumerate(stream):
        got = s.feed([t])
        if i >= 2:
            ref.erase(1, 1)
        assert np.abs(got - ref.feed([t])[-1]).max() < TOL
        assert s.tokens == ([stream[0], t] if i else [t])


def test_prompt_longer_than_context_is_cut(pair):
    model, ref = pair
    s = Session(model, n_ctx=16, n_batch=4, context_erase=0.75)
    long = tokens(40, 7)
    s.prompt(long)
    assert s.tokens == long[:1] + long[-3:]  # n_ctx * (1 - 0.75) = 4 tokens: the first and the last three


def test_f16_cache_close_to_f32(pair):
    model, _ = pair
    prompt = tokens(30, 8)
    f32 = Session(model, n_ctx=32, f16_cache=False).prompt(prompt)
    f16 = Session(model, n_ctx=32, f16_cache=True).prompt(prompt)
    assert 0 < np.abs(f16 - f32).max() < 0.02


def test_bad_arguments(pair):
    model, _ = pair
    with pytest.raises(ValueError, match="n_ctx"):
        Session(model, n_ctx=1)
    with pytest.raises(ValueError, match="n_batch"):
        Session(model, n_batch=0)
    with pytest.raises(ValueError, match="context_erase"):
        Session(model, context_erase=0.0)
    s = Session(model, n_ctx=8)
    with pytest.raises(ValueError, match="vocabulary"):
        s.feed([model.n_vocab])
    with pytest.raises(ValueError, match="vocabulary"):
        s.prompt([-1])
    with pytest.raises(ValueError, match="at least one token"):
        s.prompt([])
