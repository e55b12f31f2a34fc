"""K-quant quantizers against llama.cpp itself (llama-cpp-python, a test-only oracle): an F32 model
written by us is quantized by llama.cpp's llama_model_quantize, and every tensor it wrote must equal,
byte for byte, our quantization of the same F32 rows to the type llama.cpp chose for it."""
from __future__ import annotations

import ctypes

import llama_cpp  # test-only oracle; ./dev.sh test installs it
import numpy as np
import pytest

from gpt4all_core import gguf
from gpt4all_core.backend import cpu_kernels as ck

N_EMBD, N_FF, N_LAYER, N_VOCAB = 256, 512, 2, 512
# llama_ftype: mixtures that between them write every K-quant and IQ4_NL (and Q8_0 / Q5_0 / Q4_1 for some tensors)
FTYPES = {"Q2_K": 10, "Q3_K_M": 12, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18, "IQ4_NL": 25}


@pytest.fixture(scope="module")
def f32_model(tmp_path_factory):
    rng = np.random.default_rng(42)
    path = tmp_path_factory.mktemp("quantize") / "tiny-f32.gguf"
    w = gguf.GGUFWriter(path)
    w.add("general.architecture", "llama")
    w.add("general.file_type", 0)
    for key, value in {"context_length": 128, "embedding_length": N_EMBD, "block_count": N_LAYER,
                       "feed_forward_length": N_FF, "attention.head_count": 4, "attention.head_count_kv": 2,
                       "rope.dimension_count": N_EMBD // 4, "attention.layer_norm_rms_epsilon": 1e-5}.items():
        w.add(f"llama.{key}", value)
    w.add("tokenizer.ggml.model", "llama")
    w.add("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>"] + [f"t{i}" for i in range(N_VOCAB - 3)])
    w.add("tokenizer.ggml.scores", np.zeros(N_VOCAB, np.float32))
    w.add("tokenizer.ggml.token_type", np.array([2, 3, 3] + [1] * (N_VOCAB - 3), np.int32))

    def weight(rows: int, cols: int) -> np.ndarray:
        # rows of different scales and a few outliers: every branch of the scale searches gets used
        x = rng.standard_normal((rows, cols)).astype(np.float32) * rng.uniform(0.01, 2, (rows, 1)).astype(np.float32)
        x[rng.integers(0, rows, 4), rng.integers(0, cols, 4)] *= 20
        return x

    w.add_tensor("token_embd.weight", weight(N_VOCAB, N_EMBD))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    w.add_tensor("output.weight", weight(N_VOCAB, N_EMBD))
    for i in range(N_LAYER):
        for name, shape in [("attn_q", (N_EMBD, N_EMBD)), ("attn_k", (N_EMBD // 2, N_EMBD)),
                            ("attn_v", (N_EMBD // 2, N_EMBD)), ("attn_output", (N_EMBD, N_EMBD)),
                            ("ffn_gate", (N_FF, N_EMBD)), ("ffn_up", (N_FF, N_EMBD)), ("ffn_down", (N_EMBD, N_FF))]:
            w.add_tensor(f"blk.{i}.{name}.weight", weight(*shape))
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
    w.write()
    return path


@pytest.mark.parametrize("ftype", FTYPES)
def test_quantize_matches_llama_cpp(f32_model, tmp_path, ftype):
    out = tmp_path / f"tiny-{ftype}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[ftype]
    params.nthread = 2
    assert llama_cpp.llama_model_quantize(str(f32_model).encode(), str(out).encode(), ctypes.byref(params)) == 0
    compared = set()
    with gguf.open(f32_model) as src, gguf.open(out) as dst:
        for name, t in dst.tensors.items():
            if t.type.name == "F32":
                continue
            ours = ck.quantize(src.tensors[name].data, t.type)
            assert ours.tobytes() == t.data.tobytes(), f"{ftype}: {name} as {t.type.name}"
            compared.add(t.type.name)
    assert compared & {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"}, compared


def test_every_k_quant_was_compared(f32_model, tmp_path):
    """The mixtures above must between them cover all five K-quants (else the test proves less)."""
    seen = set()
    for ftype, code in FTYPES.items():
        out = tmp_path / f"{ftype}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = code
        llama_cpp.llama_model_quantize(str(f32_model).encode(), str(out).encode(), ctypes.byref(params))
        with gguf.open(out) as f:
            seen |= {t.type.name for t in f.tensors.values()}
    assert {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"} <= seen, seen
