"""WordPiece (bert) exact to llama.cpp on BGE's vocabulary: its test pairs, llama.cpp itself on varied
and random texts in all modes (CLS and SEP around the text), every token's piece, decoding."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_oracle import (TEXTS, assert_same_pieces, assert_same_tokens, assert_test_pairs, llama_detokenize, load_pair,
                          vocab_path)

from gpt4all_core import gguf
from gpt4all_core.errors import TokenizerError
from gpt4all_core.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def pair():
    return load_pair(vocab_path("bert-bge"))


def test_llama_cpp_test_pairs(pair):
    tok, _ = pair
    assert_test_pairs(tok, "bert-bge")


def test_same_tokens_as_llama_cpp(pair):
    assert_same_tokens(*pair)


def test_cls_and_sep_frame_the_text(pair):
    ours, _ = pair
    ids = ours.encode("Hello, world!")
    assert ids[0] == ours._ids["[CLS]"] and ids[-1] == ours._ids["[SEP]"]
    assert ids[1:-1] == ours.encode("Hello, world!", add_special=False)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_random_text_same_as_llama_cpp(pair, text):
    ours, llama = pair
    assert ours.encode(text, add_special=False) == llama.tokenize(text.encode(), add_bos=False, special=False)


def test_every_token_piece_as_llama_cpp(pair):
    ours, llama = pair
    assert_same_pieces(ours, llama)


def test_decode_as_llama_cpp(pair):
    ours, llama = pair
    for text in TEXTS:
        for special in (False, True):
            ids = ours.encode(text, add_special=True, parse_special=special)
            assert ours.decode(ids, special).encode() == llama_detokenize(llama, ids, special), (text, special)


def test_a_word_no_token_covers_is_unknown(pair):
    ours, _ = pair
    unk = ours.vocab.special["unknown"]
    assert ours.encode("hello \U0001F999 world", add_special=False)[1] == unk


def test_no_unknown_token_is_refused(tmp_path):
    w = gguf.GGUFWriter(tmp_path / "vocab.gguf")
    w.add("general.architecture", "bert")
    w.add("tokenizer.ggml.model", "bert")
    w.add("tokenizer.ggml.tokens", ["[PAD]", "\u2581a"])
    w.write()
    with pytest.raises(TokenizerError, match="needs an unknown token"):
        Tokenizer.from_gguf(gguf.open(tmp_path / "vocab.gguf"))
