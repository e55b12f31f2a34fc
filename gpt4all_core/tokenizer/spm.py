"""SentencePiece-style encoding (`tokenizer.ggml.model = llama`): the C++ merge loop of spm.hpp, with
llama.cpp's space before the text and after every special token."""
from __future__ import annotations

from gpt4all_core.errors import TokenizerError
from gpt4all_core.tokenizer._spm import SpmModel
from gpt4all_core.tokenizer.vocab import Vocab

SPACE = "\u2581"  # SentencePiece's visible space


class SpmEncoder:
    def __init__(self, vocab: Vocab, ids: dict[str, int]):
        self._add_space_prefix = vocab.add_space_prefix
        byte_tokens = [ids.get(f"<0x{b:02X}>", ids.get(chr(b), -1) if b < 128 else -1) for b in range(256)]
        self._model = SpmModel(vocab.tokens, vocab.scores, byte_tokens)

    def encode(self, fragments: list, out: list[int]) -> None:
        """Appends the ids of fragments (texts and special token ids) to out."""
        prev_special = True  # SentencePiece puts a space before the text, and after a special token
        for frag in fragments:
            if isinstance(frag, int):
                out.append(frag)
                prev_special = True
                continue
            piece = (" " if self._add_space_prefix and prev_special else "") + frag
            try:
                out += self._model.encode(piece.replace(" ", SPACE))
            except ValueError as e:
                raise TokenizerError(f"cannot encode {frag[:40]!r}: {e}") from None
            prev_special = False

    @staticmethod
    def normal_piece(text: str) -> bytes:
        return text.replace(SPACE, " ").encode("utf-8", "surrogateescape")
