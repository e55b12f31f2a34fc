"""Byte-level BPE tokenizers (gpt2 and gemma4 models) exact to llama.cpp: its own test pairs for every
BPE vocabulary it ships, llama.cpp itself (llama-cpp-python, vocab only) on varied and random texts in
all modes, every token's piece, decoding, and the vocabularies that must be refused at load."""
from __future__ import annotations

import numpy as np
import pytest
from fixture_paths import MODEL_DIR, need
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_oracle import (TEXTS, assert_same_pieces, assert_same_tokens, assert_test_pairs, llama_detokenize, load_pair,
                          vocab_path)

from gpt4all_core import gguf
from gpt4all_core.errors import TokenizerError, UnsupportedModelError
from gpt4all_core.tokenizer import Tokenizer

# every BPE vocabulary llama.cpp has test pairs for, one per pre-tokenizer family
BPE_VOCABS = ["command-r", "deepseek-coder", "deepseek-llm", "falcon", "gemma-4", "gpt-2", "llama-bpe", "mpt",
              "qwen2", "qwen35", "refact", "starcoder"]
ORACLE_VOCABS = ["smollm2", *BPE_VOCABS, "aquila"]  # aquila: no pre-tokenizer named, so llama.cpp's default
SMOLLM2 = MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf"


def path_of(name: str):
    return need(SMOLLM2) if name == "smollm2" else vocab_path(name)


@pytest.fixture(scope="module")
def pair_for():
    """name -> (ours, llama.cpp's), each loaded once: the big vocabularies take a second or two."""
    loaded: dict = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = load_pair(path_of(name))
        return loaded[name]

    yield get
    for _, llama in loaded.values():
        llama.close()  # now, not at interpreter exit when llama-cpp-python's bindings are gone


@pytest.mark.parametrize("name", BPE_VOCABS)
def test_llama_cpp_test_pairs(pair_for, name):
    tok, _ = pair_for(name)
    assert_test_pairs(tok, name)


@pytest.mark.parametrize("name", ORACLE_VOCABS)
def test_same_tokens_as_llama_cpp(pair_for, name):
    assert_same_tokens(*pair_for(name))


@pytest.mark.parametrize("name", ["smollm2", "llama-bpe", "qwen2", "qwen35", "gemma-4", "deepseek-llm", "deepseek-coder",
                                  "falcon", "gpt-2", "command-r"])
@settings(max_examples=120, deadline=None, derandomize=True)
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_random_text_same_as_llama_cpp(pair_for, name, text):
    ours, llama = pair_for(name)
    assert ours.encode(text, add_special=False) == llama.tokenize(text.encode(), add_bos=False, special=False)


@pytest.mark.parametrize("name", ["smollm2", "gemma-4"])
def test_every_token_piece_as_llama_cpp(pair_for, name):
    ours, llama = pair_for(name)
    assert_same_pieces(ours, llama)


@pytest.mark.parametrize("name", ["smollm2", "llama-bpe", "qwen2", "deepseek-llm", "gemma-4"])
def test_decode_as_llama_cpp(pair_for, name):
    """decode is llama.cpp's detokenizer (its space cleaning included), and gives the text back
    wherever llama.cpp's does."""
    ours, llama = pair_for(name)
    for text in TEXTS:
        for special in (False, True):
            ids = ours.encode(text, add_special=False, parse_special=special)
            expected = llama_detokenize(llama, ids, special)
            assert ours.decode(ids, special).encode() == expected, (text, special)
            if expected == text.encode():
                assert ours.decode(ids, special) == text


def test_chat_markup_is_one_token_only_with_parse_special(pair_for):
    ours, _ = pair_for("smollm2")
    im_start = ours._ids["<|im_start|>"]
    assert ours.encode("<|im_start|>", add_special=False, parse_special=True) == [im_start]
    assert im_start not in ours.encode("<|im_start|>", add_special=False, parse_special=False)
    ids = ours.encode("<|im_start|>user\nHi<|im_end|>", add_special=False, parse_special=True)
    assert ids[0] == im_start and ids[-1] == ours._ids["<|im_end|>"]
    assert ours.decode(ids) == "user\nHi" and ours.decode(ids, special=True) == "<|im_start|>user\nHi<|im_end|>"


def test_bos_as_llama_cpp_says(pair_for):
    """Llama 3's pre-tokenizer adds BOS by default, SmolLM2's file says not to, Gemma 4 always does."""
    for name, adds in (("llama-bpe", True), ("smollm2", False), ("gemma-4", True), ("qwen2", False)):
        ours, _ = pair_for(name)
        assert (ours.encode("x")[0] == ours.bos_id) is adds, name


def test_stream_decoder_emits_only_whole_characters(pair_for):
    ours, _ = pair_for("smollm2")
    text = " 🦙 日本語 é 🏳️‍🌈 𓀀 done"
    ids = ours.encode(text, add_special=False)
    stream = ours.stream()
    pieces = [stream.feed(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert len(ids) > len([p for p in pieces if p])  # byte-level tokens did split characters


# --- vocabularies that must be refused at load -------------------------------------------------------

TOKENS = ["a", "b", "ab", "Ġ", "Ġa"]


def write(tmp_path, **keys):
    w = gguf.GGUFWriter(tmp_path / "vocab.gguf")
    w.add("general.architecture", "llama")
    for key, value in keys.items():
        w.add(key.replace("__", "."), value)
    w.write()
    return gguf.open(tmp_path / "vocab.gguf")


def bpe(tmp_path, merges=("a b", "Ġ a"), **keys):
    keys = {"tokenizer__ggml__model": "gpt2", "tokenizer__ggml__tokens": TOKENS, "tokenizer__ggml__pre": "gpt-2",
            "tokenizer__ggml__merges": list(merges), **keys}
    return Tokenizer.from_gguf(write(tmp_path, **keys))


def test_a_crafted_vocabulary_works(tmp_path):
    tok = bpe(tmp_path, tokenizer__ggml__token_type=np.ones(5, np.int32))
    assert tok.encode("ab a ab", add_special=False) == [2, 4, 3, 2]  # " ab" has no merge: Ġ then ab
    assert tok.decode([2, 4]) == "ab a"


@pytest.mark.parametrize("merges, message", [
    (["a b", "a c"], r"tokenizer.ggml.merges\[1\] 'a c' names a piece that is not a token"),
    (["a b", "ab"], r"tokenizer.ggml.merges\[1\] 'ab' is malformed"),
    ([" ab"], r"tokenizer.ggml.merges\[0\] ' ab' is malformed"),
])
def test_bad_merges_are_refused(tmp_path, merges, message):
    with pytest.raises(TokenizerError, match=message):
        bpe(tmp_path, merges)


def test_a_merge_that_makes_no_token_is_kept_as_llama_cpp_does(tmp_path):
    """llama.cpp ranks a merge whose result is not in the vocabulary; the merged symbol then falls
    back to its bytes, each looked up alone: Ġ's two bytes are no tokens and vanish, b is one."""
    tok = bpe(tmp_path, merges=["Ġ b"])
    assert tok.encode(" b", add_special=False) == [1]


def test_missing_pieces_are_refused(tmp_path):
    with pytest.raises(TokenizerError, match="tokenizer.ggml.merges: missing"):
        Tokenizer.from_gguf(write(tmp_path, tokenizer__ggml__model="gpt2", tokenizer__ggml__tokens=TOKENS))
    with pytest.raises(TokenizerError, match="tokenizer.ggml.tokens: missing"):
        Tokenizer.from_gguf(write(tmp_path, tokenizer__ggml__model="gpt2", tokenizer__ggml__merges=["a b"]))


def test_pre_tokenizers_llama_cpp_does_not_know_are_refused(tmp_path):
    with pytest.raises(TokenizerError, match="unknown pre-tokenizer type 'no-such-pre'"):
        bpe(tmp_path, tokenizer__ggml__pre="no-such-pre")


def test_pre_tokenizers_not_written_yet_are_named(tmp_path):
    with pytest.raises(UnsupportedModelError, match="BPE pre-tokenizer 'tekken' is not supported yet"):
        bpe(tmp_path, tokenizer__ggml__pre="tekken")


def partition_reference(tok: Tokenizer, text: str, parse_special: bool) -> list:
    """llama.cpp's partitioning written plainly: every eligible special token in turn, longest first."""
    fragments: list = [text] if text else []
    for token, tid in tok._eligible[parse_special]:
        split: list = []
        for frag in fragments:
            if isinstance(frag, int) or token not in frag:
                split.append(frag)
                continue
            parts = frag.split(token)
            for k, part in enumerate(parts):
                split += ([tid] if k else []) + ([part] if part else [])
        fragments = split
    return fragments


@settings(max_examples=200, deadline=None, derandomize=True)
@given(pieces=st.lists(st.sampled_from(["<|im_start|>", "<|im_end|>", "<|im_", "start|>", "end|>", "<|", "|>", "<",
                                        "<|endoftext|>", "<|endoftext", "x", " ", "\n"]), max_size=12))
def test_partition_finds_every_overlapping_special_token(pair_for, pieces):
    """Only the special tokens near a first regex pass's matches are searched for; overlapping and
    nested occurrences must still come out as searching for every token would."""
    ours, _ = pair_for("qwen2")
    text = "".join(pieces)
    for parse_special in (False, True):
        assert ours._partition(text, parse_special) == partition_reference(ours, text, parse_special)
