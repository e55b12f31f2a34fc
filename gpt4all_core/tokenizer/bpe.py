"""Byte-level BPE encoding (`tokenizer.ggml.model = gpt2`, and Gemma 4's `gemma4`): the pre-tokenizer
that `tokenizer.ggml.pre` names and the merge loop, both in C++ (pretokenize.hpp, bpe.hpp)."""
from __future__ import annotations

from gpt4all_core.errors import TokenizerError, UnsupportedModelError
from gpt4all_core.tokenizer._bpe import BpeModel
from gpt4all_core.tokenizer.fragments import WordCachingEncoder
from gpt4all_core.tokenizer.spm import SPACE
from gpt4all_core.tokenizer.vocab import Vocab


def _byte_stand_ins() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, reversed: printable Latin-1 bytes stand for themselves, the others
    for U+0100 onwards in byte order."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    return {**{chr(b): b for b in printable}, **{chr(256 + k): b for k, b in enumerate(others)}}


STAND_INS = _byte_stand_ins()


class BpeEncoder(WordCachingEncoder):
    def __init__(self, vocab: Vocab, ids: dict[str, int]):
        pre = vocab.pre_tokenizer
        if pre is None or pre.rules is None:
            raise UnsupportedModelError(f"BPE pre-tokenizer {vocab.pre!r} is not supported yet")
        self._escape = pre.escape_whitespaces
        self._model = BpeModel(vocab.tokens, bytes(pre.rules), pre.byte_encode, pre.ignore_merges,
                               pre.type == "gemma4")
        bad = self._model.add_merges(vocab.merges)
        if bad is not None:
            index, why = bad
            raise TokenizerError(f"tokenizer.ggml.merges[{index}] {vocab.merges[index]!r} {why}")

    def prepare(self, text: str) -> str:
        return text.replace(" ", SPACE) if self._escape else text

    def normal_piece(self, text: str) -> bytes:
        """A normal token's bytes: its stand-ins mapped back to bytes (a character that stands for no
        byte is written as llama.cpp writes it), or, for SentencePiece-style BPE, its text."""
        if self._escape:
            return text.replace(SPACE, " ").encode("utf-8", "surrogateescape")
        try:
            return bytes(STAND_INS[c] for c in text)
        except KeyError:
            return _decode_with_unknown(text)


def _decode_with_unknown(text: str) -> bytes:
    out = bytearray()
    for c in text:
        if c in STAND_INS:
            out.append(STAND_INS[c])
        else:  # llama.cpp's llama_decode_text marks the character, and appends the whole token
            raw = c.encode("utf-8", "surrogateescape")
            out += f"[UNK_BYTE_0x{raw.hex()}".encode() + text.encode("utf-8", "surrogateescape") + b"]"
    return bytes(out)
