"""Token sampling as GPT4All does it: repeat penalty, top-k, top-p, min-p, temperature.

The chain
---------
GPT4All builds its sampler on llama.cpp's samplers, in this order, every filter with min_keep 1:

1. **Repeat penalty** over the last ``repeat_last_n`` tokens of the history. Each *distinct* token
   there is penalized once, however often it occurs: a logit > 0 is divided by
   ``repeat_penalty``, a logit <= 0 multiplied (llama.cpp's fix for negative logits, which
   dividing would raise). No token is exempt (GPT4All passes ``penalize_nl=true, ignore_eos=false``).
   Then OpenAI's **presence and frequency penalties** (0 in GPT4All; the server sets them):
   ``logit -= frequency_penalty * count + presence_penalty`` for each token of the *whole* history
   passed (OpenAI counts the completion so far; llama.cpp the same window as the repeat penalty).
2. ``temp == 0``: **greedy**, the argmax of the penalized logits (no random number is drawn).
   Otherwise:
3. **Top-k**: the ``top_k`` highest logits; ``top_k == 0`` (or >= the vocabulary) means no limit.
4. **Top-p** on the softmax of the surviving logits *at temperature 1*: the shortest
   highest-first prefix whose probability sum is >= ``top_p``, the token that crosses the
   threshold included; ``top_p == 1`` turns it off, ``top_p == 0`` keeps the single best token.
5. **Min-p**, also at temperature 1: keep tokens whose probability is >= ``min_p`` times the
   best one's (llama.cpp compares logits: logit >= max + log(min_p)); ``min_p == 0`` is off,
   ``min_p == 1`` keeps the tokens tied with the best.
6. **Temperature**: the survivors' logits divided by ``temp``, softmax, one draw.

Sources (read, not copied):

- GPT4All 2.8.x, ``gpt4all-backend/llamamodel.cpp``, ``llama_sample_top_p_top_k``: penalties,
  ``llama_sample_top_k(k, 1)``, tail-free and typical at 1.0 (both no-ops), ``top_p(p, 1)``,
  ``min_p(p, 1)``, ``temp``, ``llama_sample_token``. The penalty window is the last
  ``repeat_last_n`` tokens of ``promptCtx.tokens``: the whole context, prompt included.
- GPT4All main, ``gpt4all-backend/src/llamamodel.cpp``, ``LLamaModel::initSampler``: the same
  order as a llama_sampler chain (penalties, then ``greedy`` if ``temp == 0.0`` else top_k,
  top_p(p, 1), min_p(p, 1), temp, dist). Its penalty window holds only the tokens the chain
  itself sampled since ``initSampler``, i.e. the current response.
- llama.cpp ``src/llama-sampling.cpp`` (now ``llama-sampler.cpp``): the penalty rule, top-k's
  ``k <= 0`` = no limit, top-p's ``cum_sum >= p`` test that keeps the crossing token, min-p's
  ``max_logit + logf(p)`` threshold, greedy's first-maximum argmax.

Which tokens count as history is the caller's choice (pass the whole context for 2.8.x's
behaviour, only the response for main's); ``repeat_last_n == -1`` means all of it, as 2.8.x's
``(size_t)-1`` window did (main's llama.cpp clamps -1 to 0, turning the penalty off).

Where we differ, on purpose: ties are broken towards the lowest token id everywhere (top-k's
cut, top-p's order, greedy), where llama.cpp's partial sort leaves them unspecified; random
numbers come from our own seeded xoshiro256** (the same stream on every platform), not
std::mt19937; a NaN or +inf logit raises instead of sampling garbage; 2.8.x's ``temp == 0``
divided by zero, main's is greedy, and we follow main.
"""
from __future__ import annotations

import math
import operator
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpt4all_core.engine._sampling import SamplerCore

__all__ = ["Sampler", "SamplingParams"]


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _integer(name: str, value) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, not {type(value).__name__}") from None


TOP_K_MAX = 2**31 - 1  # larger top_k values read as this (past any vocabulary: no limit)


@dataclass(frozen=True)
class SamplingParams:
    """GPT4All's sampling settings, with its defaults (the Python bindings' ``generate``)."""

    temp: float = 0.7            # 0 = greedy
    top_k: int = 40              # 0 = no limit
    top_p: float = 0.4           # 1 = off
    min_p: float = 0.0           # 0 = off
    repeat_penalty: float = 1.18  # 1 = off
    repeat_last_n: int = 64      # 0 = off, -1 = the whole history
    presence_penalty: float = 0.0   # OpenAI's: minus this once for each token already in the history
    frequency_penalty: float = 0.0  # OpenAI's: minus this times the token's count in the history

    def __post_init__(self):
        checks = {
            "temp": (_real, lambda v: v >= 0, ">= 0"),
            "top_k": (_integer, lambda v: v >= 0, ">= 0 (0 = no limit)"),
            "top_p": (_real, lambda v: 0 <= v <= 1, "in [0, 1]"),
            "min_p": (_real, lambda v: 0 <= v <= 1, "in [0, 1]"),
            "repeat_penalty": (_real, lambda v: v > 0, "> 0"),
            "repeat_last_n": (_integer, lambda v: v >= -1, ">= 0, or -1 for the whole history"),
            "presence_penalty": (_real, lambda v: True, "finite"),
            "frequency_penalty": (_real, lambda v: True, "finite"),
        }
        for name, (convert, ok, rule) in checks.items():
            value = convert(name, getattr(self, name))
            if not ok(value):
                raise ValueError(f"{name} must be {rule}, got {value}")
            object.__setattr__(self, name, value)   # normalized: plain float / int
        # any k past the vocabulary means no limit; the C sampler takes it as a ssize_t
        object.__setattr__(self, "top_k", min(self.top_k, TOP_K_MAX))


class Sampler:
    """Draws token ids from logits with GPT4All's chain (see the module docstring).

    ``seed`` None picks a random one (kept in ``self.seed``, so a run can be replayed); the same
    seed and the same inputs give the same tokens. One Sampler per thread: it keeps scratch
    buffers sized to the vocabulary between calls.
    """

    def __init__(self, params: SamplingParams, seed: int | None = None):
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be a SamplingParams, not {type(params).__name__}")
        if seed is None:
            seed = secrets.randbits(64)
        self.seed = _integer("seed", seed)
        self.params = params
        self._core = SamplerCore(params.temp, params.top_k, params.top_p, params.min_p,
                                 params.repeat_penalty, self.seed % 2**64, params.presence_penalty,
                                 params.frequency_penalty)

    def sample(self, logits: np.ndarray, history: Sequence[int] | np.ndarray = ()) -> int:
        """One token id. ``logits``: float32 [n_vocab], only read. ``history``: the tokens so far;
        only its last ``repeat_last_n`` are used (and checked to lie in the vocabulary)."""
        return int(self._core.sample(_logits(logits), *self._window(history)))

    def probabilities(self, logits: np.ndarray, history: Sequence[int] | np.ndarray = ()) -> np.ndarray:
        """The distribution ``sample`` draws from: float64 [n_vocab], 0 for filtered tokens
        (one-hot for greedy). Draws no random number."""
        return self._core.probabilities(_logits(logits), *self._window(history))

    def logprobs(self, logits: np.ndarray, history: Sequence[int] | np.ndarray, token: int,
                 top: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
        """OpenAI's logprobs: log-softmax of the logits as the penalties leave them (temperature and
        the top-k/top-p/min-p filters only shape the draw, not the model's distribution). Returns
        (logprob of token, the `top` most likely ids best first, their logprobs)."""
        return self._core.logprobs(_logits(logits), *self._window(history), _integer("token", token),
                                   _integer("top", top))

    def _window(self, history) -> tuple[np.ndarray, int]:
        """The history tokens the penalties look at, and where the repeat penalty's window starts in it:
        the last repeat_last_n tokens, or the whole history when presence or frequency penalties are on."""
        p = self.params
        n = p.repeat_last_n
        size = len(history)
        take = size if n == -1 else min(n, size)
        whole = size if (p.presence_penalty or p.frequency_penalty) else take
        window = np.asarray(history[size - whole:] if whole else ())
        if window.size == 0:
            return np.empty(0, np.int64), 0
        if window.ndim != 1 or window.dtype.kind not in "iu":
            raise ValueError(f"history must be a 1-D sequence of integer token ids, got "
                             f"{window.ndim}-D {window.dtype}")
        # int64 holds every id; an unsigned id >= 2**63 wraps negative and is rejected in C
        return np.ascontiguousarray(window, dtype=np.int64), whole - take


def _logits(logits) -> np.ndarray:
    if not isinstance(logits, np.ndarray):
        raise ValueError(f"logits must be a numpy array, not {type(logits).__name__}")
    if logits.dtype != np.float32:
        raise ValueError(f"logits must be float32, got {logits.dtype}")
    if logits.ndim != 1 or logits.shape[0] == 0:
        raise ValueError(f"logits must have shape [n_vocab] with n_vocab >= 1, got {logits.shape}")
    if logits.shape[0] >= 2**31:
        raise ValueError(f"n_vocab {logits.shape[0]} does not fit 32-bit token ids")
    return np.ascontiguousarray(logits)   # a copy only for a strided view
