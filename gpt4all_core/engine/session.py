"""A Session: one model's KV cache for n_ctx tokens and the tokens it holds.

Slot i of the cache holds tokens[i] at position i. Prompts go in batches of n_batch; a prompt
that starts with what the cache already holds is only evaluated from where they differ (chat
turns do not re-evaluate their history). When the next batch does not fit, GPT4All's context
erase makes room: the first token stays, the oldest min(n_past - 1, n_ctx * context_erase)
after it go, and the cache slides down over them with the kept keys re-rotated to their new
positions; nothing is evaluated again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gpt4all_core.models.base import Model

N_KEEP = 1  # tokens at the start that context erase never drops (BOS, or the chat's first token)


class Session:
    def __init__(self, model: Model, n_ctx: int = 2048, n_batch: int = 8, n_threads: int | None = None,
                 context_erase: float = 0.75, f16_cache: bool = True):
        for name, value, low in (("n_ctx", n_ctx, 2), ("n_batch", n_batch, 1)):
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, not {value!r}")
        if not 0.0 < context_erase <= 1.0:
            raise ValueError(f"context_erase must lie in (0, 1], not {context_erase}")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be at least 1, not {n_threads}")
        self.model = model
        self.n_ctx, self.n_batch, self.n_threads = int(n_ctx), int(n_batch), n_threads
        self.context_erase = float(context_erase)
        self.cache = model.new_cache(self.n_ctx, f16_cache)
        self.tokens: list[int] = []  # what the cache holds, slot by slot
        self.logits: np.ndarray | None = None  # after the last token of self.tokens
        self.n_erased = 0  # tokens dropped by context erase so far

    @property
    def n_past(self) -> int:
        return len(self.tokens)

    def reset(self) -> None:
        self.tokens.clear()
        self.cache.clear()
        self.logits = None

    # ---- feeding tokens ----

    def prompt(self, tokens: Sequence[int], progress: Callable[[int, int], object] | None = None) -> np.ndarray:
        """Makes the cache hold `tokens` (reusing the longest common prefix of what it holds) and
        returns the logits after the last one. A prompt longer than the context keeps its first
        token and its last n_ctx * (1 - context_erase) - 1 tokens."""
        tokens = self._check_tokens(tokens)
        if not tokens:
            raise ValueError("prompt: at least one token is needed")
        if len(tokens) > self.n_ctx:
            keep = max(1, int(self.n_ctx * (1.0 - self.context_erase)))
            tokens = tokens[:N_KEEP] + tokens[len(tokens) - (keep - N_KEEP):] if keep > N_KEEP else tokens[-keep:]
        common = self._common_prefix(tokens)
        if common == len(tokens):  # all cached, but the logits of the last one are needed again
            common -= 1
        self._truncate(common)
        return self._feed(tokens[common:], progress)

    def feed(self, tokens: Sequence[int], progress: Callable[[int, int], object] | None = None) -> np.ndarray:
        """Appends tokens after what the cache holds, n_batch at a time, erasing old context when a
        batch does not fit; returns the logits after the last one."""
        return self._feed(self._check_tokens(tokens), progress)

    def _feed(self, tokens: list[int], progress: Callable[[int, int], object] | None) -> np.ndarray:
        if not tokens:
            if self.logits is None:
                raise ValueError("feed: no tokens, and none evaluated before")
            return self.logits
        done = 0
        while done < len(tokens):
            batch = tokens[done:done + min(self.n_batch, self.n_ctx - N_KEEP)]
            if self.n_past + len(batch) > self.n_ctx:
                self.erase(len(batch))
            start = self.n_past
            slots = np.arange(start, start + len(batch), dtype=np.int32)
            logits = self.model.decoder.forward(self.cache, np.asarray(batch, np.int32), slots, slots,
                                                start + len(batch), 1, self.n_threads)
            self.tokens += batch
            self.logits = logits[0]
            done += len(batch)
            if progress is not None:
                progress(done, len(tokens))
        return self.logits

    def erase(self, room: int = 1) -> int:
        """GPT4All's context erase: drops the oldest tokens after the first N_KEEP until `room` more
        fit (at least n_ctx * context_erase of them, as GPT4All does); returns how many went."""
        n_past = self.n_past
        n_discard = min(n_past - N_KEEP, max(int(self.n_ctx * self.context_erase), n_past + room - self.n_ctx))
        if n_discard <= 0:
            return 0
        src = N_KEEP + n_discard
        self.model.decoder.shift(self.cache, N_KEEP, src, n_past - src, -n_discard, self.n_threads)
        del self.tokens[N_KEEP:src]
        self.n_erased += n_discard
        return n_discard

    # ---- helpers ----

    def _check_tokens(self, tokens: Sequence[int]) -> list[int]:
        out = [int(t) for t in tokens]
        n_vocab = self.model.n_vocab
        bad = [t for t in out if not 0 <= t < n_vocab]
        if bad:
            raise ValueError(f"tokens: id {bad[0]} outside the vocabulary of {n_vocab}")
        return out

    def _common_prefix(self, tokens: list[int]) -> int:
        n = 0
        for a, b in zip(self.tokens, tokens):
            if a != b:
                break
            n += 1
        return n

    def _truncate(self, n: int) -> None:
        """Forgets every cached token from the n-th on."""
        if n < self.n_past:
            self.cache.pos[n:self.n_past] = -1
            del self.tokens[n:]
            self.logits = None
