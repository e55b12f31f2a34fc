"""A tokenizer's vocabulary, read from GGUF metadata alone and checked at load."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from gpt4all_core.errors import TokenizerError


class TokenType(IntEnum):
    """tokenizer.ggml.token_type values."""

    UNDEFINED = 0
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


SPECIAL_KEYS = ("bos", "eos", "eot", "eom", "unknown", "separator", "padding", "cls", "mask")


@dataclass
class Vocab:
    model: str  # tokenizer.ggml.model: llama (SPM), gpt2 (BPE), bert (WordPiece), ...
    pre: str | None
    tokens: list[str]
    scores: np.ndarray  # float32, one per token (zeros when the file has none)
    types: np.ndarray  # int32 TokenType, one per token (NORMAL when the file has none)
    merges: list[str]
    special: dict[str, int] = field(default_factory=dict)  # "bos" -> id, ...
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool = True

    @classmethod
    def from_gguf(cls, gf) -> "Vocab":
        path = getattr(gf, "path", None)

        def fail(message: str, key: str) -> TokenizerError:
            return TokenizerError(f"{path}: {key}: {message}")

        md = gf.metadata
        if "tokenizer.ggml.model" not in md:
            raise fail("missing: the file has no tokenizer", "tokenizer.ggml.model")
        tokens = md.get("tokenizer.ggml.tokens")
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
            raise fail("missing or not a non-empty array of strings", "tokenizer.ggml.tokens")
        n = len(tokens)
        scores = np.asarray(md.get("tokenizer.ggml.scores", np.zeros(n, np.float32)), dtype=np.float32)
        types = np.asarray(md.get("tokenizer.ggml.token_type", np.full(n, TokenType.NORMAL, np.int32)), dtype=np.int32)
        for key, arr in (("tokenizer.ggml.scores", scores), ("tokenizer.ggml.token_type", types)):
            if arr.shape != (n,):
                raise fail(f"has {arr.size} entries for {n} tokens", key)
        if types.size and (types.min() < 0 or types.max() > max(TokenType)):
            raise fail(f"unknown token type {int(types.max() if types.max() > max(TokenType) else types.min())}",
                       "tokenizer.ggml.token_type")
        special = {}
        for name in SPECIAL_KEYS:
            key = f"tokenizer.ggml.{name}_token_id"
            if key in md:
                tid = int(md[key])
                if not 0 <= tid < n:
                    if name in ("padding", "separator", "cls", "mask", "unknown"):
                        continue  # llama.cpp ignores these when out of range
                    raise fail(f"token id {tid} outside the vocabulary of {n}", key)
                special[name] = tid
        merges = md.get("tokenizer.ggml.merges", [])
        return cls(
            model=md["tokenizer.ggml.model"], pre=md.get("tokenizer.ggml.pre"), tokens=tokens, scores=scores,
            types=types, merges=list(merges), special=special,
            add_bos=bool(md.get("tokenizer.ggml.add_bos_token", md["tokenizer.ggml.model"] == "llama")),
            add_eos=bool(md.get("tokenizer.ggml.add_eos_token", False)),
            add_space_prefix=bool(md.get("tokenizer.ggml.add_space_prefix", md["tokenizer.ggml.model"] == "llama")),
        )
