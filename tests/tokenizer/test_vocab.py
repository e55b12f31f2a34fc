"""Vocabularies that cannot work raise clear errors at load; unsupported kinds say so by name."""
from __future__ import annotations

import numpy as np
import pytest

from gpt4all_core import gguf
from gpt4all_core.errors import TokenizerError, UnsupportedModelError
from gpt4all_core.tokenizer import Tokenizer, Vocab


def write(tmp_path, **keys):
    w = gguf.GGUFWriter(tmp_path / "vocab.gguf")
    for key, value in keys.items():
        w.add(key.replace("__", "."), value)
    w.write()
    return gguf.open(tmp_path / "vocab.gguf")


TOKENS = ["<unk>", "<s>", "</s>", "\u2581a", "a", "<0x41>"]


@pytest.mark.parametrize("keys, message", [
    ({}, "tokenizer.ggml.model: missing"),
    ({"tokenizer__ggml__model": "llama"}, "tokenizer.ggml.tokens: missing"),
    ({"tokenizer__ggml__model": "llama", "tokenizer__ggml__tokens": TOKENS,
      "tokenizer__ggml__scores": np.zeros(3, np.float32)}, "tokenizer.ggml.scores: has 3 entries for 6 tokens"),
    ({"tokenizer__ggml__model": "llama", "tokenizer__ggml__tokens": TOKENS,
      "tokenizer__ggml__token_type": np.array([1, 1, 1, 1, 1, 9], np.int32)}, "unknown token type 9"),
    ({"tokenizer__ggml__model": "llama", "tokenizer__ggml__tokens": TOKENS,
      "tokenizer__ggml__bos_token_id": 99}, "bos_token_id: token id 99 outside the vocabulary of 6"),
])
def test_broken_vocabularies(tmp_path, keys, message):
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.from_gguf(write(tmp_path, general__architecture="llama", **keys))


def test_unsupported_kind_is_named(tmp_path):
    f = write(tmp_path, tokenizer__ggml__model="t5", tokenizer__ggml__tokens=TOKENS)
    with pytest.raises(UnsupportedModelError, match="tokenizer model 't5' is not supported yet"):
        Tokenizer.from_gguf(f)


def test_out_of_range_token_id(tmp_path):
    tok = Tokenizer.from_gguf(write(tmp_path, tokenizer__ggml__model="llama", tokenizer__ggml__tokens=TOKENS))
    with pytest.raises(TokenizerError, match="token id 6 outside"):
        tok.decode([3, 6])


def test_no_byte_fallback_is_an_error(tmp_path):
    tok = Tokenizer.from_gguf(write(tmp_path, tokenizer__ggml__model="llama", tokenizer__ggml__tokens=TOKENS,
                                    tokenizer__ggml__add_space_prefix=False))
    assert tok.encode("A", add_special=False)[-1] == 5  # byte fallback through <0x41>
    with pytest.raises(TokenizerError, match="no token"):
        tok.encode("z", add_special=False)


@pytest.mark.parametrize("model, expected", [
    ("llama", {"bos": 1, "eos": 2, "unknown": 0}),
    ("bert", {"bos": 101, "unknown": 100, "separator": 102, "padding": 0, "mask": 103}),
    ("gpt2", {"bos": 11, "eos": 11}),
])
def test_llama_cpp_default_special_ids(tmp_path, model, expected):
    tokens = [f"t{i}" for i in range(200)]
    f = write(tmp_path, tokenizer__ggml__model=model, tokenizer__ggml__tokens=tokens, tokenizer__ggml__merges=[])
    assert Vocab.from_gguf(f).special == expected


def test_separator_key_is_spelled_as_llama_cpp_spells_it(tmp_path):
    f = write(tmp_path, tokenizer__ggml__model="bert", tokenizer__ggml__tokens=TOKENS,
              tokenizer__ggml__seperator_token_id=2, tokenizer__ggml__unknown_token_id=0)
    assert Vocab.from_gguf(f).special == {"separator": 2, "unknown": 0, "padding": 0}  # BERT's default pad: 0


def test_empty_tokens_are_named_after_their_index(tmp_path):
    f = write(tmp_path, tokenizer__ggml__model="llama", tokenizer__ggml__tokens=["<unk>", "", "a"])
    assert Vocab.from_gguf(f).tokens == ["<unk>", "[EMPTY_1]", "a"]
