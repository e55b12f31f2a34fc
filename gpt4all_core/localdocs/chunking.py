"""Chunks of a text by tokens of the embedding model, with overlap, each keeping its character
range and line range in the text it was cut from (so a reference can point back into the file)."""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_CHUNK_TOKENS = 128  # about GPT4All's 512-character snippets; well inside MiniLM's 512-token window
DEFAULT_OVERLAP_TOKENS = 32
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character range [start, end) in the section's text
    end: int
    line_from: int  # 1-based, inclusive
    line_to: int
    n_tokens: int


class TokenCounter:
    """Tokens per whitespace-separated word, cached. For WordPiece (BERT) models the sum over a
    text's words is exactly the text's token count (whitespace always splits); for other
    tokenizers it is close."""

    def __init__(self, encode: Callable[[str], list[int]]):
        self._encode = encode
        self._cache: dict[str, int] = {}

    def __call__(self, word: str) -> int:
        n = self._cache.get(word)
        if n is None:
            n = len(self._encode(word))
            if len(self._cache) < 1_000_000:
                self._cache[word] = n
        return n


def chunk_text(text: str, count: Callable[[str], int], chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
               overlap_tokens: int = DEFAULT_OVERLAP_TOKENS) -> list[Chunk]:
    """Consecutive runs of whole words of at most chunk_tokens tokens (a longer single word makes
    a chunk by itself), the next starting overlap_tokens tokens (whole words) before the previous
    one ended."""
    if chunk_tokens < 1 or not 0 <= overlap_tokens < chunk_tokens:
        raise ValueError(f"chunk_tokens must be positive and overlap_tokens in [0, chunk_tokens), "
                         f"not {chunk_tokens} and {overlap_tokens}")
    words = [(m.start(), m.end(), count(m.group())) for m in _WORD.finditer(text)]
    newlines = [m.start() for m in re.finditer("\n", text)]
    out: list[Chunk] = []
    i, n = 0, len(words)
    while i < n:
        j, total = i, 0
        while j < n and (j == i or total + words[j][2] <= chunk_tokens):
            total += words[j][2]
            j += 1
        start, end = words[i][0], words[j - 1][1]
        line_from = bisect.bisect_left(newlines, start) + 1
        line_to = bisect.bisect_left(newlines, end) + 1
        out.append(Chunk(text[start:end], start, end, line_from, line_to, total))
        if j >= n:
            break
        k, back = j, 0
        while k - 1 > i and back + words[k - 1][2] <= overlap_tokens:
            k -= 1
            back += words[k][2]
        i = k
    return out
