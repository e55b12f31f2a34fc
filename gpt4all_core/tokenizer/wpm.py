"""WordPiece encoding (`tokenizer.ggml.model = bert`): llama.cpp's BERT normalizer and greedy longest
match, in C++ (wpm.hpp)."""
from __future__ import annotations

from gpt4all_core.errors import TokenizerError
from gpt4all_core.tokenizer._wpm import WpmModel
from gpt4all_core.tokenizer.fragments import WordCachingEncoder
from gpt4all_core.tokenizer.spm import SpmEncoder
from gpt4all_core.tokenizer.vocab import Vocab


class WpmEncoder(WordCachingEncoder):
    def __init__(self, vocab: Vocab, ids: dict[str, int]):
        unk = vocab.special.get("unknown")
        if unk is None:  # a word no token covers has nowhere to go
            raise TokenizerError("a WordPiece vocabulary needs an unknown token (tokenizer.ggml.unknown_token_id)")
        self._model = WpmModel(vocab.tokens, vocab.lowercase, vocab.strip_accents, unk)

    normal_piece = staticmethod(SpmEncoder.normal_piece)  # word starts are marked with U+2581 as in SPM
