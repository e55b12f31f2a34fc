"""Tokenizers built from GGUF metadata alone, exact to llama.cpp.

- SentencePiece-style (`tokenizer.ggml.model = llama`: Llama 2, Mistral, Phi-3, Gemma 3);
- byte-level BPE (`gpt2`: Llama 3, Qwen 2/2.5/3/3.5, SmolLM, GPT-2, DeepSeek, Falcon, MPT, StarCoder,
  Refact, Command-R, ...; and Gemma 4's `gemma4`), with the pre-tokenizer `tokenizer.ggml.pre` names
  (pretok.py lists them; one llama.cpp knows but we do not run yet raises UnsupportedModelError);
- WordPiece (`bert`: BGE and other BERT embedders).

Other tokenizer models (t5, rwkv, plamo2, ...) raise UnsupportedModelError by name. Each model's
encoder lives in its own module (spm.py, bpe.py, wpm.py, merge loops in C++); this one holds what
they share: llama.cpp's special-token partitioning, token pieces, decoding and streaming.
"""
from __future__ import annotations

import codecs
import re

import numpy as np

from gpt4all_core.errors import TokenizerError, UnsupportedModelError
from gpt4all_core.tokenizer.attributes import EOG_TEXTS, Attr, token_attributes
from gpt4all_core.tokenizer.vocab import BPE_MODELS, TokenType, Vocab  # noqa: F401 - re-exported

SUPPORTED_MODELS = ("llama", *BPE_MODELS, "bert")
C_SPACE = " \t\n\v\f\r"  # what C's isspace() strips for LSTRIP/RSTRIP
SKIP_UNLESS_PARSED = Attr.CONTROL | Attr.UNKNOWN  # special tokens matched only with parse_special
# llama.cpp's clean_up_tokenization_spaces, pass by pass (on bytes, as it does)
CLEAN_SPACES = ((re.compile(rb" ([?!.,])"), rb"\1"), (re.compile(rb" ' "), rb"'"),
                (re.compile(rb" '(?=[sm]|re|ve)"), rb"'"))

__all__ = ["StreamDecoder", "Tokenizer", "TokenType", "Vocab"]


def _encoder(vocab: Vocab, ids: dict[str, int]):
    if vocab.model == "llama":
        from gpt4all_core.tokenizer.spm import SpmEncoder
        return SpmEncoder(vocab, ids)
    if vocab.model in BPE_MODELS:
        from gpt4all_core.tokenizer.bpe import BpeEncoder
        return BpeEncoder(vocab, ids)
    from gpt4all_core.tokenizer.wpm import WpmEncoder
    return WpmEncoder(vocab, ids)


class Tokenizer:
    """encode(text) -> ids and decode(ids) -> text for one vocabulary."""

    def __init__(self, vocab: Vocab, model_name: str = "", architecture: str | None = None):
        if vocab.model not in SUPPORTED_MODELS:
            raise UnsupportedModelError(
                f"tokenizer model {vocab.model!r} is not supported yet (supported: {', '.join(SUPPORTED_MODELS)})")
        self.vocab = vocab
        ids = {}
        for i, t in enumerate(vocab.tokens):
            ids[t] = i  # the last of duplicates wins, as in llama.cpp
        self._ids = ids
        self._encoder = _encoder(vocab, ids)
        self._attrs = token_attributes(vocab, ids, model_name, vocab.pre, architecture)
        self._specials = self._special_tokens()
        self._eligible = {parse: [(t, i) for t, i in self._specials if parse or not self._attrs[i] & SKIP_UNLESS_PARSED]
                          for parse in (False, True)}
        self._finders: dict[bool, re.Pattern | None] = {}
        self._pieces: dict[tuple[int, bool], bytes] = {}
        self._first, self._last = self._framing()
        pre = vocab.pre_tokenizer
        self._clean_spaces = vocab.model == "bert" or (pre is not None and pre.clean_spaces)

    def _special_tokens(self) -> list[tuple[str, int]]:
        """(text, id) of the tokens partitioning looks for, longest first (so that a special token
        that contains another one wins)."""
        special = Attr.CONTROL | Attr.UNKNOWN | Attr.USER_DEFINED
        tokens = self.vocab.tokens
        found = [(tokens[i], int(i)) for i in np.flatnonzero(self._attrs & special) if tokens[i]]
        return sorted(found, key=lambda s: -len(s[0].encode("utf-8", "surrogateescape")))

    def _framing(self) -> tuple[int | None, int | None]:
        """The ids add_special puts before and after the text: BERT frames every text with CLS (its
        BOS) and SEP whatever the file says, as llama.cpp does; the others add BOS/EOS as asked."""
        v = self.vocab
        if v.model == "bert":
            return v.special.get("bos"), v.special.get("separator")
        return (v.special.get("bos") if v.add_bos else None), (v.special.get("eos") if v.add_eos else None)

    @classmethod
    def from_gguf(cls, gf) -> "Tokenizer":
        return cls(Vocab.from_gguf(gf), gf.get("general.name", ""), gf.get("general.architecture"))

    @property
    def bos_id(self) -> int | None:
        return self.vocab.special.get("bos")

    @property
    def eos_id(self) -> int | None:
        return self.vocab.special.get("eos")

    @property
    def eog_ids(self) -> frozenset[int]:
        """Ids that end a generation, as llama.cpp's vocabulary counts them: EOS, end-of-turn and
        end-of-message, and every token whose text is one of the end markers (<|im_end|>, ...)."""
        special = self.vocab.special
        ids = {special[k] for k in ("eos", "eot", "eom") if k in special}
        return frozenset(ids | {self._ids[t] for t in EOG_TEXTS if t in self._ids})

    def __len__(self) -> int:
        return len(self.vocab.tokens)

    def _finder(self, parse_special: bool):
        """One regex alternation of the special tokens eligible in this mode, compiled on first use."""
        if parse_special not in self._finders:
            texts = [t for t, _ in self._eligible[parse_special]]
            self._finders[parse_special] = re.compile("|".join(map(re.escape, texts))) if texts else None
        return self._finders[parse_special]

    def _present_specials(self, text: str, parse_special: bool) -> list[tuple[str, int]]:
        """The eligible special tokens that occur in text, longest first; what _partition must split
        on. One regex pass finds leftmost matches; a token it did not report can only occur
        overlapping one of them, so only their neighbourhoods are searched for the others."""
        finder = self._finder(parse_special)
        spans = [m.span() for m in finder.finditer(text)] if finder else []
        if not spans:
            return []
        eligible = self._eligible[parse_special]
        if len(spans) > 64:  # many matches: searching each token once over the text is cheaper
            return eligible
        found = {text[a:b] for a, b in spans}
        return [(t, tid) for t, tid in eligible
                if t in found or any(t in text[max(0, a - len(t) + 1):b + len(t) - 1] for a, b in spans)]

    def _partition(self, text: str, parse_special: bool) -> list:
        """text split into raw strings and special token ids, as llama.cpp partitions it: user-defined
        tokens always match; control and unknown ones only with parse_special (so '<|im_start|>' typed
        by a user stays text); LSTRIP/RSTRIP tokens eat the whitespace beside them. Tokens are taken
        longest first, each splitting what the ones before left."""
        fragments: list = [text] if text else []
        for token, tid in self._present_specials(text, parse_special):
            attr = self._attrs[tid]
            split: list = []
            for frag in fragments:
                if not isinstance(frag, str) or token not in frag:
                    split.append(frag)
                    continue
                parts = frag.split(token)
                for k, part in enumerate(parts):
                    if k and attr & Attr.RSTRIP:
                        part = part.lstrip(C_SPACE)
                    if k < len(parts) - 1 and attr & Attr.LSTRIP:
                        part = part.rstrip(C_SPACE)
                    if k:
                        split.append(tid)
                    if part:
                        split.append(part)
            fragments = split
        return fragments

    def encode(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Token ids of text. add_special: BOS/EOS as the vocabulary asks (CLS/SEP for BERT);
        parse_special: special token texts in text become their single tokens."""
        out: list[int] = []
        if add_special and self._first is not None:
            out.append(self._first)
        self._encoder.encode(self._partition(text, parse_special), out)
        if add_special and self._last is not None:
            out.append(self._last)
        return out

    def clear_cache(self) -> None:
        """Forget the words the BPE and WordPiece encoders remember (for measurements, or memory)."""
        clear = getattr(self._encoder, "clear_cache", None)
        if clear is not None:
            clear()

    def token_to_piece(self, token_id: int, special: bool = False) -> bytes:
        """The bytes token_id stands for, as llama.cpp renders it: control and unknown tokens are
        empty unless special; special and user-defined tokens are their text; normal ones their text
        decoded (visible spaces made spaces, byte-level stand-ins made bytes); byte tokens their byte."""
        if not 0 <= token_id < len(self.vocab.tokens):
            raise TokenizerError(f"token id {token_id} outside the vocabulary of {len(self.vocab.tokens)}")
        key = (token_id, special)
        piece = self._pieces.get(key)
        if piece is None:
            piece = self._pieces[key] = self._render(token_id, special)
        return piece

    def _render(self, token_id: int, special: bool) -> bytes:
        text, attr = self.vocab.tokens[token_id], self._attrs[token_id]
        if attr & (Attr.CONTROL | Attr.UNKNOWN):
            return text.encode("utf-8", "surrogateescape") if special else b""
        if attr & Attr.USER_DEFINED:
            return text.encode("utf-8", "surrogateescape")
        if attr & Attr.NORMAL:
            return self._encoder.normal_piece(text)
        if attr & Attr.BYTE:
            return bytes([int(text[3:5], 16)])
        return b""

    def decode(self, ids, special: bool = False, strip_space_prefix: bool = True) -> str:
        """Text of ids. When ids are a whole encoded text, the space SentencePiece put in front of it
        is taken off again (strip_space_prefix); continuations keep their leading space. Vocabularies
        that ask for it get llama.cpp's tidying of spaces before punctuation and contractions."""
        raw = b"".join(self.token_to_piece(int(i), special) for i in ids)
        if strip_space_prefix and self.vocab.add_space_prefix and raw.startswith(b" "):
            raw = raw[1:]
        if self._clean_spaces:
            for pattern, repl in CLEAN_SPACES:
                raw = pattern.sub(repl, raw)
        return raw.decode("utf-8", "replace")

    def stream(self, special: bool = False) -> "StreamDecoder":
        return StreamDecoder(self, special)


class StreamDecoder:
    """Feed generated token ids one at a time; each call returns only complete characters (a
    character whose UTF-8 bytes span several tokens comes out with its last byte)."""

    def __init__(self, tokenizer: Tokenizer, special: bool = False):
        self._tokenizer = tokenizer
        self._special = special
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, token_id: int) -> str:
        return self._utf8.decode(self._tokenizer.token_to_piece(int(token_id), self._special))

    def flush(self) -> str:
        """What is left (an incomplete character at the end becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)
