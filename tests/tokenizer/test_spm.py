"""SentencePiece-style tokenizers (llama-spm, phi-3, Gemma 3) exact to llama.cpp: its own test pairs,
llama.cpp itself (llama-cpp-python, vocab only) on varied and random texts, every token's piece."""
from __future__ import annotations

import pytest
from fixture_paths import TEST_DATA, need
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_oracle import assert_same_pieces, assert_same_tokens, assert_test_pairs, load_pair, vocab_path

SPM_VOCABS = ["llama-spm", "phi-3"]
TEXTS = ["", " ", "  ", "\t\n", "Hello world", " Hello  world ", "The capital of France is",
         "def f(x):\n    return x**2  # square\n", "🦙 llamas 🦙🦙 and 🏳️‍🌈", "日本語のテキスト、中文文本。한국어",
         "1234567890 3.14159 -42 1e10", "   leading and trailing   ", "multi\n\n\nline\r\nwindows",
         "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "<|user|>\nHi<|end|>\n<|assistant|>",
         "<s>inside</s> text", "Ünïcödé àccents ñ ß ø", "tabs\tand\tspaces", "a" * 300, "<unk><pad>\u2581x"]


@pytest.fixture(scope="module", params=["gemma-3", "llama-spm", "phi-3", "baichuan"])
def pair(request):
    """(our tokenizer, llama.cpp's) for one SPM vocabulary."""
    path = need(TEST_DATA / "gemma-3-270m-q4_k_m.gguf") if request.param == "gemma-3" else vocab_path(request.param)
    return load_pair(path)


@pytest.mark.parametrize("name", SPM_VOCABS)
def test_llama_cpp_test_pairs(name):
    """llama.cpp's own .inp/.out pairs (tokenized there without special tokens)."""
    tok, _ = load_pair(vocab_path(name))
    assert_test_pairs(tok, name)


@pytest.mark.parametrize("text", TEXTS)
def test_same_tokens_as_llama_cpp(pair, text):
    assert_same_tokens(*pair, texts=[text])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_random_text_same_as_llama_cpp(pair, text):
    ours, llama = pair
    assert ours.encode(text, add_special=False) == llama.tokenize(text.encode(), add_bos=False, special=False)


def test_every_token_piece_as_llama_cpp(pair):
    ours, llama = pair
    assert_same_pieces(ours, llama)


@pytest.mark.parametrize("text", [t for t in TEXTS if "<" not in t])
def test_decode_round_trip(pair, text):
    ours, _ = pair
    assert ours.decode(ours.encode(text, add_special=False)) == text
    assert ours.decode(ours.encode(text, add_special=True)) == text  # BOS is a control token: empty


def test_special_tokens_only_with_parse_special(pair):
    ours, _ = pair
    for text in ("<start_of_turn>", "<|user|>"):
        if text in ours._ids:
            assert ours.encode(text, add_special=False, parse_special=True) == [ours._ids[text]]
            assert len(ours.encode(text, add_special=False, parse_special=False)) > 1


def test_stream_decoder_emits_only_whole_characters(pair):
    ours, _ = pair
    text = " 🦙 日本語 é 🏳️‍🌈 𓀀 𒀀 done"  # the last two need byte fallback in every vocabulary here
    ids = ours.encode(text, add_special=False)
    stream = ours.stream()
    pieces = [stream.feed(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == ours.decode(ids, strip_space_prefix=False)
    assert all("\ufffd" not in p for p in pieces)
    assert len(ids) > len([p for p in pieces if p])  # some characters did span several tokens
