"""The part the word-caching encoders (BPE, WordPiece) share: special token ids pass through, text
fragments go to the C++ model, which remembers each word's ids until clear_cache."""
from __future__ import annotations


class WordCachingEncoder:
    _model = None  # the C++ model: encode(str) -> list[int], clear_cache()

    def prepare(self, text: str) -> str:
        """What the model is given for a text fragment (BPE escapes spaces for some pre-tokenizers)."""
        return text

    def clear_cache(self) -> None:
        self._model.clear_cache()

    def encode(self, fragments: list, out: list[int]) -> None:
        """Appends the ids of fragments (texts and special token ids) to out."""
        for frag in fragments:
            if isinstance(frag, int):
                out.append(frag)
            else:
                out += self._model.encode(self.prepare(frag))
