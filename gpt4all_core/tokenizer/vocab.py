"""A tokenizer's vocabulary, read from GGUF metadata alone and checked at load."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from gpt4all_core.errors import TokenizerError
from gpt4all_core.tokenizer.pretok import PreTokenizer, pre_tokenizer


class TokenType(IntEnum):
    """tokenizer.ggml.token_type values."""

    UNDEFINED = 0
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


# role -> the metadata key's name (llama.cpp spells the separator's key "seperator")
SPECIAL_KEYS = {"bos": "bos", "eos": "eos", "eot": "eot", "eom": "eom", "unknown": "unknown",
                "separator": "seperator", "padding": "padding", "cls": "cls", "mask": "mask"}
# Roles that may point outside the vocabulary: llama.cpp ignores those and keeps the default.
LENIENT_ROLES = ("padding", "separator", "cls", "mask", "unknown")
# llama.cpp's ids where the file names none (dropped where outside the vocabulary)
DEFAULT_SPECIAL = {
    "llama": {"bos": 1, "eos": 2, "unknown": 0},
    "gpt2": {"bos": 11, "eos": 11},
    "bert": {"bos": 101, "unknown": 100, "separator": 102, "padding": 0, "mask": 103},
    "gemma4": {},
}
BPE_MODELS = ("gpt2", "gemma4")


@dataclass
class Vocab:
    model: str  # tokenizer.ggml.model: llama (SPM), gpt2 or gemma4 (BPE), bert (WordPiece), ...
    pre: str | None
    tokens: list[str]
    scores: np.ndarray  # float32, one per token (zeros when the file has none)
    types: np.ndarray  # int32 TokenType, one per token (NORMAL when the file has none)
    merges: list[str]
    special: dict[str, int] = field(default_factory=dict)  # "bos" -> id, ...
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool = True
    lowercase: bool = True  # WordPiece normalizer
    strip_accents: bool = True
    pre_tokenizer: PreTokenizer | None = None  # BPE only

    @classmethod
    def from_gguf(cls, gf) -> "Vocab":
        path = getattr(gf, "path", None)

        def fail(message: str, key: str) -> TokenizerError:
            return TokenizerError(f"{path}: {key}: {message}")

        md = gf.metadata
        if "tokenizer.ggml.model" not in md:
            raise fail("missing: the file has no tokenizer", "tokenizer.ggml.model")
        model = md["tokenizer.ggml.model"]
        tokens = md.get("tokenizer.ggml.tokens")
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
            raise fail("missing or not a non-empty array of strings", "tokenizer.ggml.tokens")
        # llama.cpp names an empty token after its index (so that it is still unique)
        tokens = [t or f"[EMPTY_{i}]" for i, t in enumerate(tokens)]
        n = len(tokens)
        scores = np.asarray(md.get("tokenizer.ggml.scores", np.zeros(n, np.float32)), dtype=np.float32)
        types = np.asarray(md.get("tokenizer.ggml.token_type", np.full(n, TokenType.NORMAL, np.int32)), dtype=np.int32)
        for key, arr in (("tokenizer.ggml.scores", scores), ("tokenizer.ggml.token_type", types)):
            if arr.shape != (n,):
                raise fail(f"has {arr.size} entries for {n} tokens", key)
        if types.size and (types.min() < 0 or types.max() > max(TokenType)):
            raise fail(f"unknown token type {int(types.max() if types.max() > max(TokenType) else types.min())}",
                       "tokenizer.ggml.token_type")
        pre = _pre_tokenizer(md, model, fail)
        merges = md.get("tokenizer.ggml.merges")
        if model in BPE_MODELS and not isinstance(merges, list):
            raise fail("missing: a BPE vocabulary needs its merges", "tokenizer.ggml.merges")
        return cls(
            model=model, pre=md.get("tokenizer.ggml.pre"), tokens=tokens, scores=scores, types=types,
            merges=list(merges or []), special=_special_ids(md, model, pre, n, fail), pre_tokenizer=pre,
            add_bos=_add_bos(md, model, pre),
            add_eos=bool(md.get("tokenizer.ggml.add_eos_token", False)),
            add_space_prefix=bool(md.get("tokenizer.ggml.add_space_prefix", model == "llama")),
            lowercase=bool(md.get("tokenizer.ggml.normalizer.lowercase", True)),
            strip_accents=bool(md.get("tokenizer.ggml.normalizer.strip_accents",
                                      md.get("tokenizer.ggml.normalizer.lowercase", True))),
        )


def _pre_tokenizer(md, model: str, fail) -> PreTokenizer | None:
    if model not in BPE_MODELS:
        return None
    pre = pre_tokenizer(model, md.get("tokenizer.ggml.pre"))
    if pre is None:  # llama.cpp refuses the file too ("unknown pre-tokenizer type")
        raise fail(f"unknown pre-tokenizer type {md.get('tokenizer.ggml.pre')!r}", "tokenizer.ggml.pre")
    return pre


def _special_ids(md, model: str, pre: PreTokenizer | None, n: int, fail) -> dict[str, int]:
    """Role -> id: the file's, else llama.cpp's default for the model (where inside the vocabulary)."""
    special = {}
    defaults = dict(DEFAULT_SPECIAL.get(model, {}))
    if pre is not None and pre.no_bos:
        defaults.pop("bos", None)
    for name, key_name in SPECIAL_KEYS.items():
        key = f"tokenizer.ggml.{key_name}_token_id"
        tid = defaults.get(name)
        if key in md:
            given = int(md[key])
            if not 0 <= given < n and name not in LENIENT_ROLES:
                raise fail(f"token id {given} outside the vocabulary of {n}", key)
            if 0 <= given < n:
                tid = given
        if tid is not None and 0 <= tid < n:
            special[name] = tid
    return special


def _add_bos(md, model: str, pre: PreTokenizer | None) -> bool:
    """The file's add_bos_token, else llama.cpp's default: SPM and WordPiece add BOS, BPE as its
    pre-tokenizer says; Gemma 4 always does (llama.cpp overrides the file there)."""
    default = model in ("llama", "bert") or bool(pre and pre.add_bos)
    add = bool(md.get("tokenizer.ggml.add_bos_token", default))
    return add or bool(pre and pre.type == "gemma4")
