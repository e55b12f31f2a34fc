"""all-MiniLM-L6-v2's tokenizer (GPT4All's default embedding model) against llama.cpp: its
vocab.txt written as llama.cpp's converter writes a BERT vocabulary (WordPiece continuations lose
'##', word starts get '▁', the bracketed specials stay), then both engines read that GGUF."""
from __future__ import annotations

import json

import pytest
from fixture_paths import TEST_DATA, need
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_oracle import assert_same_tokens, load_pair

from gpt4all_core.gguf import GGUFWriter
from gpt4all_core.tokenizer import TokenType


def phantom_space(token: str) -> str:
    if token.startswith("[") and token.endswith("]"):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


@pytest.fixture(scope="module")
def minilm_vocab(tmp_path_factory):
    folder = need(TEST_DATA / "all-MiniLM-L6-v2")
    tokens = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    config = json.loads((folder / "config.json").read_text())
    added = {t["content"]: t["id"] for t in json.loads((folder / "tokenizer.json").read_text())["added_tokens"]}
    assert len(tokens) == config["vocab_size"] == 30522
    path = tmp_path_factory.mktemp("minilm") / "minilm-vocab.gguf"
    with GGUFWriter(path) as w:
        w.add("general.architecture", "bert")
        w.add("general.name", "all-MiniLM-L6-v2")
        for key, value in {"block_count": config["num_hidden_layers"], "context_length": config["max_position_embeddings"],
                           "embedding_length": config["hidden_size"], "feed_forward_length": config["intermediate_size"],
                           "attention.head_count": config["num_attention_heads"]}.items():
            w.add(f"bert.{key}", value)
        w.add("bert.attention.layer_norm_epsilon", float(config["layer_norm_eps"]))
        w.add("bert.attention.causal", False)
        w.add("tokenizer.ggml.model", "bert")
        w.add("tokenizer.ggml.tokens", [phantom_space(t) for t in tokens])
        w.add("tokenizer.ggml.token_type", [int(TokenType.CONTROL if t in added else TokenType.NORMAL) for t in tokens])
        for role, text in (("unknown", "[UNK]"), ("seperator", "[SEP]"), ("padding", "[PAD]"), ("cls", "[CLS]"),
                           ("mask", "[MASK]")):
            w.add(f"tokenizer.ggml.{role}_token_id", added[text])
    return path


@pytest.fixture(scope="module")
def pair(minilm_vocab):
    return load_pair(minilm_vocab)


def test_same_tokens_as_llama_cpp(pair):
    assert_same_tokens(*pair)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_random_text_same_as_llama_cpp(pair, text):
    ours, llama = pair
    assert ours.encode(text, add_special=False) == llama.tokenize(text.encode(), add_bos=False, special=False)
