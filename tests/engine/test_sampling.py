"""The sampler against a float64 numpy reference of GPT4All's chain, plus its statistics, seeding
and input checks. The reference (reference_probabilities) is written from the chain's definition
in gpt4all_core/engine/sampling.py, independently of the C code's selection and bucket tricks."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt4all_core.engine.sampling import Sampler, SamplingParams

NO_FILTERS = dict(top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0)


# --- the reference ---------------------------------------------------------------------------

def f32(x: float) -> float:
    """Parameters reach the C code as float32, as in llama.cpp; the reference uses the same values."""
    return float(np.float32(x))


def penalized_logits(logits: np.ndarray, history, params: SamplingParams) -> np.ndarray:
    out = logits.astype(np.float64)
    n = params.repeat_last_n
    window = list(history) if n == -1 else list(history)[max(len(history) - n, 0):] if n else []
    penalty = np.float32(params.repeat_penalty)
    for tok in set(window):
        v = logits[tok]   # float32 arithmetic, like llama.cpp (and so no near-tie flips order)
        out[tok] = float(v * penalty if v <= 0 else v / penalty)
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def reference_probabilities(logits: np.ndarray, history, params: SamplingParams) -> np.ndarray:
    lg = penalized_logits(logits, history, params)
    n = len(lg)
    result = np.zeros(n)
    order = np.lexsort((np.arange(n), -lg))   # value descending, ties to the lowest id
    if params.temp == 0:
        result[order[0]] = 1.0
        return result
    keep = order
    if 0 < params.top_k < n:
        keep = keep[:params.top_k]
    if params.top_p < 1:
        cum = np.cumsum(softmax(lg[keep]))
        crossed = np.nonzero(cum >= f32(params.top_p))[0]
        if len(crossed):
            keep = keep[:crossed[0] + 1]
    if params.min_p > 0:
        keep = keep[lg[keep] >= lg[keep].max() + math.log(f32(params.min_p))]
    result[keep] = softmax(lg[keep] / f32(params.temp))
    return result


def random_logits(rng: np.random.Generator, n: int, scale: float, masked: float = 0.0) -> np.ndarray:
    logits = (rng.standard_normal(n) * scale).astype(np.float32)
    if masked and n > 1:
        idx = rng.choice(n, size=int(n * masked), replace=False)
        logits[idx[idx != logits.argmax()]] = -np.inf   # keep at least the best finite
    return logits


def assert_matches_reference(logits, history, params):
    got = Sampler(params, seed=0).probabilities(logits, history)
    want = reference_probabilities(logits, history, params)
    assert got.dtype == np.float64 and got.shape == logits.shape
    # the same kept set: nothing the reference drops, everything it keeps unless its weight
    # underflows float32 (weights are float32, as in llama.cpp: e^-104 relative to the best)
    assert not np.any((got > 0) & (want == 0)), "a token the reference filters out has probability"
    assert not np.any((got == 0) & (want > 1e-37)), "a token the reference keeps was dropped"
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert abs(got.sum() - 1.0) < 1e-6


# --- probabilities against the reference -----------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(
    n=st.sampled_from([1, 2, 3, 7, 64, 101, 1000, 4099, 50_001]),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([0.01, 1.0, 3.0, 20.0]),
    masked=st.sampled_from([0.0, 0.3]),
    temp=st.sampled_from([0.0, 0.05, 0.7, 1.0, 3.0]),
    top_k=st.sampled_from([0, 1, 2, 40, 1000, 10**6]),
    top_p=st.sampled_from([0.0, 0.05, 0.4, 0.9, 0.999, 1.0]),
    min_p=st.sampled_from([0.0, 0.02, 0.3, 1.0]),
    repeat_penalty=st.sampled_from([1.0, 1.18, 0.6, 3.0]),
    repeat_last_n=st.sampled_from([0, 1, 64, -1]),
    history_len=st.integers(0, 300),
)
def test_probabilities_match_reference(n, seed, scale, masked, temp, top_k, top_p, min_p, repeat_penalty,
                                       repeat_last_n, history_len):
    rng = np.random.default_rng(seed)
    params = SamplingParams(temp=temp, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
                            repeat_last_n=repeat_last_n)
    history = rng.integers(0, n, history_len).tolist()
    assert_matches_reference(random_logits(rng, n, scale, masked), history, params)


@pytest.mark.parametrize("n", [1, 2, 5, 999, 151_936])
@pytest.mark.parametrize("params", [
    SamplingParams(),                                            # GPT4All's defaults
    SamplingParams(top_p=0.0),                                   # only the best survives top-p
    SamplingParams(top_p=1.0, top_k=0),                          # no filter but the penalty
    SamplingParams(top_k=1),
    SamplingParams(top_k=0, top_p=0.95),                         # top-p on the whole vocabulary
    SamplingParams(top_k=0, top_p=0.5, min_p=0.05, temp=1.3),
    SamplingParams(min_p=1.0, top_p=1.0, top_k=0),               # the tokens tied with the best
    SamplingParams(temp=0.0),
], ids=lambda p: f"k{p.top_k}-p{p.top_p}-minp{p.min_p}-t{p.temp}")
def test_edge_parameters_match_reference(n, params):
    rng = np.random.default_rng(n)
    logits = random_logits(rng, n, 3.0)
    if n > 2:
        logits[n // 2] = logits.max()   # a tie with the best, for min_p=1 and greedy
    assert_matches_reference(logits, rng.integers(0, n, 80), params)


@pytest.mark.parametrize("logits", [
    np.zeros(9_999, np.float32),   # all tied (9,999: no top_p below lands exactly on a token boundary)
    np.repeat(np.float32([2.0, 1.0, 0.0]), 3000),                              # three tie classes
    np.concatenate([np.float32([50.0, -1e4, -np.inf]), np.zeros(5000, np.float32)]),  # far outliers
    np.linspace(-200, 0, 20_000, dtype=np.float32),                            # wider than the buckets
], ids=["flat", "three-levels", "outliers", "wide"])
@pytest.mark.parametrize("top_p", [0.0, 0.3, 0.5, 0.9, 0.999999])
def test_unsorted_top_p_keeps_the_sorted_prefix(logits, top_p):
    """Top-p without a top-k limit buckets the mass instead of sorting; ties must still go to the
    lowest ids and the kept set must be the sorted definition's."""
    assert_matches_reference(logits, [], SamplingParams(top_k=0, top_p=top_p, repeat_penalty=1.0))


def test_filters_work_at_temperature_one():
    """Top-p and min-p judge the softmax before temperature, as in llama.cpp's chain order."""
    logits = np.log(np.float32([0.5, 0.3, 0.2]))
    supports = set()
    for temp in (0.2, 1.0, 5.0):
        for top_p, kept in ((0.45, [0]), (0.55, [0, 1]), (0.85, [0, 1, 2])):
            probs = Sampler(SamplingParams(temp=temp, top_k=0, top_p=top_p, repeat_penalty=1.0)).probabilities(logits)
            assert np.nonzero(probs)[0].tolist() == kept   # the token crossing top_p is kept
        probs = Sampler(SamplingParams(temp=temp, top_k=0, top_p=1.0, min_p=0.5, repeat_penalty=1.0)).probabilities(logits)
        supports.add(tuple(np.nonzero(probs)[0]))
    assert supports == {(0, 1)}   # 0.3 >= 0.5 * 0.5 > 0.2, at every temperature


def test_top_k_ties_go_to_the_lowest_ids():
    logits = np.float32([1.0, 2.0, 2.0, 2.0, 0.0])
    probs = Sampler(SamplingParams(top_k=2, top_p=1.0, repeat_penalty=1.0)).probabilities(logits)
    assert np.nonzero(probs)[0].tolist() == [1, 2]


# --- greedy and the repeat penalty -----------------------------------------------------------

@pytest.mark.parametrize("logits, history, want", [
    ([1.0, 2.0, 1.9], [], 1),            # plain argmax
    ([1.0, 2.0, 1.9], [1], 2),           # 2 / 1.18 = 1.69 drops below 1.9
    ([-1.0, -1.1, -5.0], [0], 1),        # negative logits are multiplied: -1.18 < -1.1
    ([0.0, 3.0, 3.0, 1.0], [], 1),       # ties: the lowest id
    ([0.0, 3.0, 3.0, 1.0], [1, 1, 1], 2),
])
def test_greedy_is_argmax_after_penalty(logits, history, want):
    logits = np.asarray(logits, np.float32)
    sampler = Sampler(SamplingParams(temp=0.0))
    assert sampler.sample(logits, history) == want
    assert sampler.probabilities(logits, history).tolist() == [float(i == want) for i in range(len(logits))]


def penalty_probs(history, repeat_last_n, n=10, penalty=2.0):
    params = SamplingParams(temp=1.0, **{**NO_FILTERS, "repeat_penalty": penalty}, repeat_last_n=repeat_last_n)
    return Sampler(params).probabilities(np.ones(n, np.float32), history)


def test_repeat_penalty_counts_only_the_last_n_tokens():
    probs = penalty_probs([3, 4, 5], repeat_last_n=2)
    assert probs[3] == probs[0]            # outside the window
    assert probs[4] == probs[5] < probs[0]
    np.testing.assert_allclose(probs[4] / probs[0], math.exp(0.5 - 1.0), rtol=1e-6)   # logit 1 -> 1/2


def test_repeat_penalty_once_per_distinct_token():
    np.testing.assert_array_equal(penalty_probs([4, 4, 4, 4], 64), penalty_probs([4], 64))


def test_repeat_last_n_zero_and_minus_one():
    np.testing.assert_array_equal(penalty_probs([1, 2, 3], 0), np.full(10, 0.1))
    whole = penalty_probs(list(range(6)) + [9] * 100, -1)
    assert whole[0] == whole[5] == whole[9] < whole[6]   # -1: the whole history, however long


def test_presence_and_frequency_penalties_count_the_whole_history():
    """OpenAI's rule, logit -= frequency * count + presence, over the whole history, after the repeat
    penalty (which still looks at the last repeat_last_n tokens only)."""
    params = SamplingParams(temp=1.0, **{**NO_FILTERS, "repeat_penalty": 2.0}, repeat_last_n=1,
                            presence_penalty=0.5, frequency_penalty=0.25)
    probs = Sampler(params).probabilities(np.ones(10, np.float32), [3, 3, 3, 5])
    want = np.ones(10)
    want[3] = 1 - (3 * 0.25 + 0.5)      # three times, outside the repeat window
    want[5] = 1 / 2 - (0.25 + 0.5)      # once, inside it
    np.testing.assert_allclose(probs, softmax(want), rtol=1e-6)
    negative = SamplingParams(temp=0.0, **NO_FILTERS, presence_penalty=-2.0)   # a negative one favours repeats
    assert Sampler(negative).sample(np.array([1.0, 2.0, 0.5], np.float32), [2]) == 2


@pytest.mark.parametrize("params", [SamplingParams(), SamplingParams(temp=0.0, repeat_penalty=1.3, presence_penalty=0.7,
                                                                     frequency_penalty=-0.4, top_k=3)])
def test_logprobs_are_the_log_softmax_of_the_penalized_logits(params):
    rng = np.random.default_rng(7)
    logits = random_logits(rng, 500, 3.0)
    history = rng.integers(0, 500, 40).tolist()
    want = penalized_logits(logits, history, params)
    for tok in set(history):   # the reference above has the repeat penalty; add OpenAI's two
        want[tok] -= history.count(tok) * f32(params.frequency_penalty) + f32(params.presence_penalty)
    want = want - want.max() - np.log(np.exp(want - want.max()).sum())
    sampler = Sampler(params, seed=1)
    token = int(rng.integers(0, 500))
    chosen, ids, lps = sampler.logprobs(logits, history, token, top=5)
    assert chosen == pytest.approx(want[token], abs=1e-4)
    np.testing.assert_array_equal(ids, np.lexsort((np.arange(500), -want))[:5])   # best first, ties to low ids
    np.testing.assert_allclose(lps, want[ids], atol=1e-4)
    assert sampler.logprobs(logits, history, token)[1].size == 0   # top 0: the chosen token only


def test_out_of_vocab_ids_outside_the_window_are_not_looked_at():
    assert penalty_probs([10_000, 4], repeat_last_n=1)[4] < 0.1


# --- sampling statistics ---------------------------------------------------------------------

def chi_square_bound(df: int, z: float = 4.753) -> float:
    """The chi-square quantile at one-sided normal z (4.753: p = 1e-6), by Wilson-Hilferty."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def chi_square(counts: np.ndarray, probs: np.ndarray, draws: int) -> tuple[float, int]:
    """Pearson's statistic over the support, categories with expectation < 5 pooled into one."""
    expected = probs * draws
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    return float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()), int(keep.sum()) - 1


def draw_counts(sampler: Sampler, logits, history, draws: int) -> np.ndarray:
    counts = np.zeros(len(logits), np.int64)
    for _ in range(draws):
        counts[sampler.sample(logits, history)] += 1
    return counts


@pytest.mark.parametrize("n, params", [
    (50, SamplingParams(top_k=5, top_p=1.0, repeat_penalty=1.0)),
    (200, SamplingParams()),                                          # defaults, penalty on
    (3000, SamplingParams(top_k=0, top_p=0.8)),                      # bucketed top-p
    (500, SamplingParams(top_k=0, top_p=1.0, min_p=0.1, temp=1.5)),
    (1000, SamplingParams(top_k=0, top_p=1.0, temp=0.8)),            # no filter at all
], ids=["top-k", "defaults", "top-p", "min-p", "full"])
def test_draws_follow_the_probabilities(n, params):
    rng = np.random.default_rng(n)
    logits = random_logits(rng, n, 2.0)
    history = rng.integers(0, n, 64)
    sampler = Sampler(params, seed=1234)
    probs = sampler.probabilities(logits, history)
    draws = 20_000
    counts = draw_counts(sampler, logits, history, draws)
    assert counts[probs == 0].sum() == 0, "a filtered-out token was drawn"
    stat, df = chi_square(counts, probs, draws)
    assert df >= 1 and stat < chi_square_bound(df)
    # the test has power: the same draws against the unfiltered distribution fail it
    wrong = Sampler(SamplingParams(**{**NO_FILTERS, "temp": 1.0})).probabilities(logits, history)
    if not np.allclose(wrong, probs, atol=1e-3):
        assert chi_square(counts, wrong, draws)[0] > chi_square_bound(chi_square(counts, wrong, draws)[1])


def test_masked_tokens_are_never_drawn():
    logits = np.full(100, -np.inf, np.float32)
    logits[[3, 50, 97]] = [0.0, -30.0, 1.0]   # 50 has a tiny but nonzero weight
    counts = draw_counts(Sampler(SamplingParams(**{**NO_FILTERS, "temp": 1.0}), seed=5), logits, [], 5000)
    assert set(np.nonzero(counts)[0]) <= {3, 50, 97} and counts[3] > 0 and counts[97] > 0


# --- the random numbers ----------------------------------------------------------------------

MASK = 2**64 - 1


def xoshiro_uniforms(seed: int, count: int) -> list[float]:
    """xoshiro256** seeded by splitmix64, in plain Python: the stream the sampler must draw."""
    state = seed & MASK
    s = []
    for _ in range(4):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        s.append(z ^ (z >> 31))

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK

    out = []
    for _ in range(count):
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t   # noqa: E702
        s[3] = rotl(s[3], 45)
        out.append((result >> 11) * 2.0**-53)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1, -1, 123456789])
def test_the_stream_is_xoshiro256starstar(seed):
    """Equal logits make every weight exactly 1, so the draw is floor(u * n) with no libm in the
    way: the token sequence pins the generator, the same on every platform."""
    n = 1000
    sampler = Sampler(SamplingParams(**{**NO_FILTERS, "temp": 1.0}), seed=seed)
    got = [sampler.sample(np.zeros(n, np.float32)) for _ in range(50)]
    assert got == [int(u * n) for u in xoshiro_uniforms(seed, 50)]


def generate(sampler: Sampler, steps: int = 100, n: int = 5000) -> list[int]:
    rng = np.random.default_rng(7)
    history = []
    for _ in range(steps):
        history.append(sampler.sample(random_logits(rng, n, 2.0), history))
    return history


def test_same_seed_same_tokens_different_seed_different_tokens():
    params = SamplingParams(top_k=0, top_p=0.95)
    first = generate(Sampler(params, seed=42))
    assert generate(Sampler(params, seed=42)) == first
    assert generate(Sampler(params, seed=43)) != first
    unseeded = Sampler(params)
    assert isinstance(unseeded.seed, int)
    assert generate(Sampler(params, seed=unseeded.seed)) == generate(unseeded)


def test_probabilities_draw_no_random_number():
    logits = random_logits(np.random.default_rng(0), 100, 1.0)
    a, b = Sampler(SamplingParams(), seed=9), Sampler(SamplingParams(), seed=9)
    a.probabilities(logits)
    assert [a.sample(logits) for _ in range(20)] == [b.sample(logits) for _ in range(20)]


# --- inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("temp", -0.1), ("temp", float("nan")), ("temp", float("inf")), ("temp", "hot"),
    ("top_k", -1), ("top_k", 2.5), ("top_k", True),
    ("top_p", -0.01), ("top_p", 1.01), ("top_p", float("nan")),
    ("min_p", -0.1), ("min_p", 1.5),
    ("repeat_penalty", 0.0), ("repeat_penalty", -1.18), ("repeat_penalty", float("inf")),
    ("repeat_last_n", -2), ("repeat_last_n", 64.0),
])
def test_bad_params_name_the_parameter(name, value):
    with pytest.raises(ValueError, match=name):
        SamplingParams(**{name: value})


@pytest.mark.parametrize("name, value", [
    ("temp", 0), ("top_k", 0), ("top_k", np.int64(7)), ("top_p", 0), ("top_p", 1), ("min_p", 1.0),
    ("repeat_penalty", 0.5), ("repeat_last_n", -1), ("repeat_last_n", 0),
])
def test_edge_params_are_accepted_and_normalized(name, value):
    params = SamplingParams(**{name: value})
    assert getattr(params, name) == value
    assert type(getattr(params, name)) is (int if name in ("top_k", "repeat_last_n") else float)


def test_a_top_k_past_any_vocabulary_is_no_limit():
    """The server's fuzzer sent top_k = 10**30, which overflowed the C sampler's ssize_t and took the
    engine thread down: any k that large now reads as 2**31 - 1 (no limit) and samples as 0 does."""
    huge = SamplingParams(top_k=10**30, temp=1.0, top_p=1.0)
    assert huge.top_k == 2**31 - 1
    logits = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    draws = [Sampler(huge, seed=s).sample(logits, []) for s in range(20)]
    assert draws == [Sampler(SamplingParams(top_k=0, temp=1.0, top_p=1.0), seed=s).sample(logits, []) for s in range(20)]


@pytest.mark.parametrize("logits", [
    np.zeros(10, np.float64), np.zeros(10, np.float16), np.zeros(10, np.int32), np.zeros((2, 5), np.float32),
    np.zeros(0, np.float32), [0.0] * 10,
    np.float32([0, np.nan, 1]), np.float32([0, np.inf, 1]), np.full(4, -np.inf, np.float32),
], ids=["float64", "float16", "int32", "2-D", "empty", "list", "nan", "+inf", "all -inf"])
@pytest.mark.parametrize("params", [SamplingParams(), SamplingParams(temp=0), SamplingParams(top_k=0, top_p=0.9)],
                         ids=["top-k", "greedy", "top-p"])
def test_bad_logits_raise(logits, params):
    with pytest.raises(ValueError, match="logit"):
        Sampler(params).sample(logits, [])


@pytest.mark.parametrize("history", [[0, 10], [-1], np.array([3, 2**40]), np.float32([1, 2]), [[1, 2]]])
def test_bad_history_raises(history):
    with pytest.raises(ValueError, match="history"):
        Sampler(SamplingParams()).sample(np.zeros(10, np.float32), history)


def test_logits_are_only_read():
    logits = random_logits(np.random.default_rng(3), 1000, 2.0)
    before = logits.copy()
    logits.flags.writeable = False
    sampler = Sampler(SamplingParams(top_k=0, top_p=0.9, min_p=0.05), seed=1)
    sampler.sample(logits, list(range(64)))
    sampler.probabilities(logits, list(range(64)))
    np.testing.assert_array_equal(logits, before)


def test_strided_logits_and_changing_vocab_sizes():
    rng = np.random.default_rng(4)
    wide = random_logits(rng, 2000, 2.0)
    sampler = Sampler(SamplingParams(), seed=2)
    np.testing.assert_array_equal(sampler.probabilities(wide[::2], [5]), sampler.probabilities(wide[::2].copy(), [5]))
    for n in (1000, 17, 1000, 1):   # the scratch buffers follow the vocabulary size
        assert_matches_reference(wide[:n], [0], SamplingParams())
        assert 0 <= sampler.sample(wide[:n], [0]) < n
