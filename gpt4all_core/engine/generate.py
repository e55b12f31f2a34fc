"""The generation loop: prompt, then sample a token, feed it, repeat; and the text side of it,
which turns tokens into whole characters and stops at end-of-generation tokens or stop strings."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from gpt4all_core.engine.session import Session
from gpt4all_core.tokenizer import Tokenizer


def generate_tokens(session: Session, prompt: Sequence[int], sampler, max_tokens: int,
                    stop_ids: Iterable[int] = ()) -> Iterator[int]:
    """Token ids sampled after prompt, each fed back before the next is drawn, until max_tokens or
    a stop id (not yielded). The context never runs out: the session erases old tokens."""
    stop = frozenset(stop_ids)
    logits = session.prompt(prompt)
    for _ in range(max_tokens):
        token = sampler.sample(logits, session.tokens)
        if token in stop:
            return
        yield token
        logits = session.feed([token])


class TextStream:
    """Token ids in, text out: whole UTF-8 characters only, and text that could be the start of a
    stop string held back until it is known not to be. done is set once a stop string appeared
    (the text before it is emitted, the stop string is not)."""

    def __init__(self, tokenizer: Tokenizer, stop_strings: Sequence[str] = (), special: bool = False):
        self._decoder = tokenizer.stream(special)
        self._stops = [s for s in stop_strings if s]
        self._pending = ""
        self.done = False

    def feed(self, token_id: int) -> str:
        if self.done:
            return ""
        self._pending += self._decoder.feed(token_id)
        return self._release()

    def flush(self) -> str:
        """What is left at the end of generation."""
        if self.done:
            return ""
        self._pending += self._decoder.flush()
        out, self._pending = self._pending, ""
        return out

    def _release(self) -> str:
        for s in self._stops:
            at = self._pending.find(s)
            if at >= 0:
                self.done = True
                out, self._pending = self._pending[:at], ""
                return out
        hold = 0  # the longest tail of pending text that begins some stop string
        for s in self._stops:
            for k in range(min(len(s) - 1, len(self._pending)), hold, -1):
                if self._pending.endswith(s[:k]):
                    hold = k
                    break
        out = self._pending[:len(self._pending) - hold]
        self._pending = self._pending[len(self._pending) - hold:]
        return out
