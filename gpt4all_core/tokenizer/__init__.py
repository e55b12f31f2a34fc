"""Tokenizers built from GGUF metadata alone, exact to llama.cpp.

Now: SentencePiece-style (`tokenizer.ggml.model = llama`: Llama 2, Mistral, Phi-3, Gemma). BPE
(`gpt2`) and WordPiece (`bert`) are not built yet and raise UnsupportedModelError by name.
"""
from __future__ import annotations

import codecs

from gpt4all_core.errors import TokenizerError, UnsupportedModelError
from gpt4all_core.tokenizer._spm import SpmModel
from gpt4all_core.tokenizer.attributes import Attr, token_attributes
from gpt4all_core.tokenizer.vocab import TokenType, Vocab  # noqa: F401 - re-exported

SPACE = "\u2581"  # SentencePiece's visible space
SUPPORTED_MODELS = ("llama",)
C_SPACE = " \t\n\v\f\r"  # what C's isspace() strips for LSTRIP/RSTRIP

__all__ = ["StreamDecoder", "Tokenizer", "TokenType", "Vocab"]


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
        byte_tokens = [ids.get(f"<0x{b:02X}>", ids.get(chr(b), -1) if b < 128 else -1) for b in range(256)]
        self._spm = SpmModel(vocab.tokens, vocab.scores, byte_tokens)
        self._attrs = token_attributes(vocab, ids, model_name, vocab.pre, architecture)
        special = Attr.CONTROL | Attr.UNKNOWN | Attr.USER_DEFINED
        specials = [(t, i) for i, t in enumerate(vocab.tokens) if self._attrs[i] & special and t]
        # longest first, so a special token that contains another one wins
        self._specials = sorted(specials, key=lambda s: -len(s[0].encode("utf-8", "surrogateescape")))

    @classmethod
    def from_gguf(cls, gf) -> "Tokenizer":
        return cls(Vocab.from_gguf(gf), gf.get("general.name", ""), gf.get("general.architecture"))

    @property
    def bos_id(self) -> int | None:
        return self.vocab.special.get("bos")

    @property
    def eos_id(self) -> int | None:
        return self.vocab.special.get("eos")

    def __len__(self) -> int:
        return len(self.vocab.tokens)

    def _partition(self, text: str, parse_special: bool) -> list:
        """text split into raw strings and special token ids, as llama.cpp partitions it: user-defined
        tokens always match; control and unknown ones only with parse_special (so '<|im_start|>' typed
        by a user stays text); LSTRIP/RSTRIP tokens eat the whitespace beside them."""
        fragments: list = [text] if text else []
        for token, tid in self._specials:
            attr = self._attrs[tid]
            if not parse_special and attr & (Attr.CONTROL | Attr.UNKNOWN):
                continue
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
        """Token ids of text. add_special: BOS/EOS as the vocabulary asks; parse_special: special
        token texts in text become their single tokens."""
        v = self.vocab
        out: list[int] = []
        if add_special and v.add_bos and self.bos_id is not None:
            out.append(self.bos_id)
        prev_special = True  # SentencePiece puts a space before the text, and after a special token
        for frag in self._partition(text, parse_special):
            if isinstance(frag, int):
                out.append(frag)
                prev_special = True
                continue
            piece = (" " if v.add_space_prefix and prev_special else "") + frag
            try:
                out += self._spm.encode(piece.replace(" ", SPACE))
            except ValueError as e:
                raise TokenizerError(f"cannot encode {frag[:40]!r}: {e}") from None
            prev_special = False
        if add_special and v.add_eos and self.eos_id is not None:
            out.append(self.eos_id)
        return out

    def token_to_piece(self, token_id: int, special: bool = False) -> bytes:
        """The bytes token_id stands for, as llama.cpp renders it: control and unknown tokens are
        empty unless special; special and user-defined tokens are their text; normal ones have
        SentencePiece's visible spaces made spaces again; byte tokens are their byte."""
        if not 0 <= token_id < len(self.vocab.tokens):
            raise TokenizerError(f"token id {token_id} outside the vocabulary of {len(self.vocab.tokens)}")
        text, attr = self.vocab.tokens[token_id], self._attrs[token_id]
        if attr & (Attr.CONTROL | Attr.UNKNOWN):
            return text.encode("utf-8", "surrogateescape") if special else b""
        if attr & Attr.USER_DEFINED:
            return text.encode("utf-8", "surrogateescape")
        if attr & Attr.NORMAL:
            return text.replace(SPACE, " ").encode("utf-8", "surrogateescape")
        if attr & Attr.BYTE:
            return bytes([int(text[3:5], 16)])
        return b""

    def decode(self, ids, special: bool = False, strip_space_prefix: bool = True) -> str:
        """Text of ids. When ids are a whole encoded text, the space SentencePiece put in front of it
        is taken off again (strip_space_prefix); continuations keep their leading space."""
        text = b"".join(self.token_to_piece(int(i), special) for i in ids).decode("utf-8", "replace")
        if strip_space_prefix and self.vocab.add_space_prefix and text.startswith(" "):
            text = text[1:]
        return text

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
