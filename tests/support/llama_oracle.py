"""llama.cpp (llama-cpp-python, vocabulary only) as the tokenizer tests' oracle, and llama.cpp's own
test pairs: ggml-vocab-NAME.gguf.inp/.out (inputs split on "\\n__ggml_vocab_test__\\n", one line of ids
per input, tokenized without BOS and without special-token parsing)."""
from __future__ import annotations

import ctypes

import llama_cpp  # test-only oracle; ./dev.sh test installs it
import numpy as np
from fixture_paths import TEST_DATA, need

from gpt4all_core import gguf
from gpt4all_core.tokenizer import Tokenizer

MODES = [(False, False), (True, False), (True, True)]  # (add_special, parse_special)
# Varied texts every vocabulary is held to: code, emoji, CJK, white-space runs, numbers, accents,
# contractions, chat markup of several families, unusual white space and compatibility characters.
TEXTS = ["", " ", "  ", "\t\n", "Hello world", " Hello  world ", "The capital of France is",
         "def f(x):\n    return x**2  # square\n", "🦙 llamas 🦙🦙 and 🏳️‍🌈", "日本語のテキスト、中文文本。한국어",
         "1234567890 3.14159 -42 1e10", "   leading and trailing   ", "multi\n\n\nline\r\nwindows",
         "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
         "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
         "<start_of_turn>user\nHi<end_of_turn>\n", "<s>inside</s> text", "[CLS] x [SEP] [MASK] <unk>",
         "Ünïcödé àccents ñ ß ø", "tabs\tand\tspaces", "a" * 300, "don't I'M we'Re you'LL it's",
         "\u00a0\u2000x\u3000y\u0085z", "ﬁ ǅ Ⅻ ① ⁵ ٣ क्षि", "  x  .  y , z ! ' a ' b", "`code` ~~~ $$ ||"]


def vocab_path(name: str):
    return need(TEST_DATA / "llama.cpp-models" / f"ggml-vocab-{name}.gguf")


def vocab_test_pairs(name: str) -> list[tuple[str, list[int]]]:
    path = vocab_path(name)
    inputs = path.with_name(path.name + ".inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    outputs = path.with_name(path.name + ".out").read_text(encoding="utf-8").split("\n")
    return [(text, [int(t) for t in line.split()]) for text, line in zip(inputs, outputs)]


def load_pair(path) -> tuple[Tokenizer, llama_cpp.Llama]:
    """(our tokenizer, llama.cpp's) for one GGUF file."""
    with gguf.open(path) as f:
        ours = Tokenizer.from_gguf(f)
    return ours, llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)


def assert_same_tokens(ours: Tokenizer, llama, texts=TEXTS) -> None:
    """Our tokens equal llama.cpp's for every text in every (add_special, parse_special) mode."""
    for text in texts:
        for add_special, parse_special in MODES:
            expected = llama.tokenize(text.encode(), add_bos=add_special, special=parse_special)
            assert ours.encode(text, add_special, parse_special) == expected, (text, add_special, parse_special)


def assert_same_pieces(ours: Tokenizer, llama) -> None:
    """Every token's piece, with and without special tokens rendered, equals llama.cpp's."""
    for special in (False, True):
        for i in range(len(ours)):
            assert ours.token_to_piece(i, special) == llama_piece(llama, i, special), (i, special)


def assert_test_pairs(tok: Tokenizer, name: str) -> None:
    """llama.cpp's own .inp/.out pairs for a vocabulary (tokenized there without special tokens)."""
    pairs = vocab_test_pairs(name)
    assert len(pairs) >= 40
    for text, expected in pairs:
        assert tok.encode(text, add_special=False) == expected, repr(text)


def llama_piece(llama, token: int, special: bool, buf=ctypes.create_string_buffer(512)) -> bytes:
    n = llama_cpp.llama_token_to_piece(llama._model.vocab, token, buf, len(buf), 0, special)
    assert n >= 0
    return buf.raw[:n]


def llama_detokenize(llama, ids: list[int], special: bool = False) -> bytes:
    """llama.cpp's own detokenizer (llama-cpp-python's detokenize only joins pieces)."""
    arr = (llama_cpp.llama_token * max(len(ids), 1))(*ids)
    size = 64 + 16 * len(ids)
    for _ in range(2):  # a negative result is the size needed
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(llama._model.vocab, arr, len(ids), buf, size, False, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n
    raise AssertionError("llama_detokenize kept asking for more room")


def greedy_llama_cpp(llama, tokens, n):
    """llama.cpp's greedy tokens, and its top-2 margin at each step."""
    llama.reset()
    llama.eval(tokens)
    out, margins = [], []
    for _ in range(n):
        logits = np.array(llama.scores[llama.n_tokens - 1])
        top2 = np.sort(logits)[-2:]
        out.append(int(logits.argmax()))
        margins.append(float(top2[1] - top2[0]))
        llama.eval([out[-1]])
    return out, margins
