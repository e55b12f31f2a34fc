"""llama.cpp (through llama-cpp-python, a test-only oracle) loads a model written by our writer."""
from __future__ import annotations

import gguf as gguf_ref
import llama_cpp  # test-only oracle; ./dev.sh test installs it
import numpy as np
import pytest
from gguf import quants as ref_quants

from gpt4all_core import gguf
from gpt4all_core.gguf import GGMLType

RNG = np.random.default_rng(7)
N_EMBD, N_FF, N_HEAD, N_HEAD_KV, N_LAYER = 64, 128, 4, 2, 2


def weight(shape: tuple[int, int], ggml_type: GGMLType) -> tuple[np.ndarray, GGMLType | None]:
    w = (RNG.standard_normal(shape) * 0.05).astype(np.float32)
    if ggml_type == GGMLType.F32:
        return w, None
    if ggml_type == GGMLType.F16:
        return w.astype(np.float16), None
    return ref_quants.quantize(w, gguf_ref.GGMLQuantizationType(ggml_type)), ggml_type


@pytest.fixture(scope="module")
def tiny_llama(smollm2_path, tmp_path_factory):
    """A 2-block llama with random weights of several types and SmolLM2's tokenizer."""
    path = tmp_path_factory.mktemp("tiny") / "tiny-llama.gguf"
    w = gguf.GGUFWriter(path)
    w.add("general.architecture", "llama")
    w.add("general.name", "tiny random llama")
    for key, value in {"context_length": 256, "embedding_length": N_EMBD, "block_count": N_LAYER,
                       "feed_forward_length": N_FF, "attention.head_count": N_HEAD,
                       "attention.head_count_kv": N_HEAD_KV, "rope.dimension_count": N_EMBD // N_HEAD,
                       "attention.layer_norm_rms_epsilon": 1e-5, "rope.freq_base": 10000.0}.items():
        w.add(f"llama.{key}", value)
    with gguf.open(smollm2_path) as src:
        for key in src.metadata:
            if key.startswith("tokenizer."):
                w.add(key, src.metadata[key], src.types[key])
        n_vocab = len(src.metadata["tokenizer.ggml.tokens"])
    n_kv = N_EMBD // N_HEAD * N_HEAD_KV
    w.add_tensor("token_embd.weight", *weight((n_vocab, N_EMBD), GGMLType.Q8_0))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    for i in range(N_LAYER):
        for name, shape, t in [("attn_q", (N_EMBD, N_EMBD), GGMLType.Q4_0), ("attn_k", (n_kv, N_EMBD), GGMLType.Q4_1),
                               ("attn_v", (n_kv, N_EMBD), GGMLType.Q5_0), ("attn_output", (N_EMBD, N_EMBD), GGMLType.F16),
                               ("ffn_gate", (N_FF, N_EMBD), GGMLType.Q5_1), ("ffn_up", (N_FF, N_EMBD), GGMLType.Q8_0),
                               ("ffn_down", (N_EMBD, N_FF), GGMLType.F32)]:
            w.add_tensor(f"blk.{i}.{name}.weight", *weight(shape, t))
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
    w.write()
    return path, n_vocab


def test_llama_cpp_loads_and_runs_our_file(tiny_llama):
    path, n_vocab = tiny_llama
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_threads=2, logits_all=True, verbose=False)
    assert (llm.n_vocab(), llm.n_embd()) == (n_vocab, N_EMBD)
    assert llm.metadata["llama.block_count"] == str(N_LAYER)
    assert llm.metadata["general.name"] == "tiny random llama"
    tokens = llm.tokenize(b"The capital of France is")
    assert len(tokens) > 3
    llm.eval(tokens)
    logits = np.asarray(llm.scores[: len(tokens)])
    assert logits.shape == (len(tokens), n_vocab)
    assert np.isfinite(logits).all() and logits.std() > 0
