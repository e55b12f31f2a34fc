"""The BERT encoder forward pass (cpu_kernels.Encoder, kernels/encoder.c) on small random weights
against the float64 numpy BERT of tests/support/bert_reference.py: every pooling, both GELU forms,
F32/F16/Q8_0 weights, sequences of mixed lengths in one packed batch, every SIMD level; and the
argument checks."""
from __future__ import annotations

import numpy as np
import pytest
from bert_reference import ReferenceBert, cosine, gelu_erf, gelu_tanh

from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.gguf import GGMLType

E, HEADS, FF, VOCAB, N_POS, BLOCKS = 64, 4, 128, 50, 40, 2
LENGTHS = [1, 5, 17, 40, 3]  # a one-token sequence and one filling every position


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0, center=0.0):
        return (center + scale * rng.standard_normal(shape)).astype(np.float32)

    w = {"token_embd.weight": normal(VOCAB, E), "position_embd.weight": normal(N_POS, E, scale=0.5),
         "token_types.weight": normal(2, E, scale=0.5), "token_embd_norm.weight": normal(E, scale=0.1, center=1),
         "token_embd_norm.bias": normal(E, scale=0.1)}
    for i in range(BLOCKS):
        p = f"blk.{i}."
        for name, (rows, cols) in {"attn_q": (E, E), "attn_k": (E, E), "attn_v": (E, E), "attn_output": (E, E),
                                   "ffn_up": (FF, E), "ffn_down": (E, FF)}.items():
            w[p + name + ".weight"] = normal(rows, cols, scale=cols ** -0.5)
            w[p + name + ".bias"] = normal(rows, scale=0.2)
        for name in ("attn_output_norm", "layer_output_norm"):
            w[p + name + ".weight"] = normal(E, scale=0.1, center=1)
            w[p + name + ".bias"] = normal(E, scale=0.1)
    return w


def stored(x: np.ndarray, qtype: str):
    """(data, ggml type) as the file would hold the matrix, and the values the reference must use."""
    if qtype == "F16":
        return (x.astype(np.float16), GGMLType.F16), x.astype(np.float16).astype(np.float64)
    if qtype == "Q8_0":
        q = ck.quantize(x, GGMLType.Q8_0)
        return (q, GGMLType.Q8_0), ck.dequantize(q, GGMLType.Q8_0).astype(np.float64)
    return (x, GGMLType.F32), x.astype(np.float64)


def build(w: dict, qtype: str = "F32", gelu: str = "tanh", biases: bool = True):
    """(Encoder, ReferenceBert) over the same weights (the matrices rounded to qtype for both)."""
    ref = {k: v.astype(np.float64) for k, v in w.items()}
    glob = {"tok_embd": (w["token_embd.weight"], GGMLType.F32), "pos_embd": (w["position_embd.weight"], GGMLType.F32),
            "type_embd": w["token_types.weight"][0], "embd_norm_w": w["token_embd_norm.weight"],
            "embd_norm_b": w["token_embd_norm.bias"]}
    blocks = []
    for i in range(BLOCKS):
        p = f"blk.{i}."
        blk = {"attn_norm_w": w[p + "attn_output_norm.weight"], "attn_norm_b": w[p + "attn_output_norm.bias"],
               "out_norm_w": w[p + "layer_output_norm.weight"], "out_norm_b": w[p + "layer_output_norm.bias"]}
        for key, name in (("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output"),
                          ("ffn_up", "ffn_up"), ("ffn_down", "ffn_down")):
            blk[key], ref[p + name + ".weight"] = stored(w[p + name + ".weight"], qtype)
        for key, name in (("bq", "attn_q"), ("bk", "attn_k"), ("bv", "attn_v"), ("bo", "attn_output"),
                          ("ffn_up_b", "ffn_up"), ("ffn_down_b", "ffn_down")):
            if biases:
                blk[key] = w[p + name + ".bias"]
            else:
                ref[p + name + ".bias"] = np.zeros_like(ref[p + name + ".bias"])
        blocks.append(blk)
    enc = ck.Encoder({"n_embd": E, "n_head": HEADS, "n_ff": FF, "n_vocab": VOCAB, "n_pos": N_POS, "norm_eps": 1e-12,
                      "gelu": gelu}, glob, blocks)
    return enc, ReferenceBert(ref, BLOCKS, HEADS, 1e-12)


def packed(seed: int = 1):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, VOCAB, n).tolist() for n in LENGTHS]
    starts = np.concatenate([[0], np.cumsum(LENGTHS)])
    return seqs, np.concatenate([np.array(s) for s in seqs]).astype(np.int32), starts


@pytest.mark.parametrize("gelu", ["tanh", "erf"])
@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_pooled_matches_reference(simd, gelu, pooling):
    enc, ref = build(random_weights(), gelu=gelu)
    seqs, tokens, starts = packed()
    for normalize in (True, False):
        got = enc.forward(tokens, starts, pooling, normalize, n_threads=2)
        want = np.array([ref.embed(s, pooling, normalize, gelu_erf if gelu == "erf" else gelu_tanh) for s in seqs])
        # post-norm hidden states are O(1): float32 through two blocks stays within 1e-5
        assert np.abs(got - want).max() < 2e-5, (gelu, pooling, normalize)
    if normalize:
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)


def test_hidden_states_and_gelu_forms_differ(simd):
    enc, ref = build(random_weights())
    seqs, tokens, starts = packed()
    got = enc.forward(tokens, starts, "none", False)
    assert got.shape == (len(tokens), E)
    want = np.concatenate([ref.hidden_states(s, gelu_tanh) for s in seqs])
    assert np.abs(got - want).max() < 2e-5
    # the two GELU forms are distinguishable at this tolerance, so the tests above can tell them apart
    assert np.abs(np.concatenate([ref.hidden_states(s, gelu_erf) for s in seqs]) - want).max() > 1e-4


@pytest.mark.parametrize("qtype", ["F16", "Q8_0"])
def test_quantized_weights(qtype):
    """F16 weights multiply float32 activations exactly; Q8_0 quantizes the activations to 8 bits
    (as llama.cpp does), so its bound is a cosine."""
    enc, ref = build(random_weights(2), qtype)
    seqs, tokens, starts = packed(3)
    got = enc.forward(tokens, starts, "mean", True)
    want = np.array([ref.embed(s, "mean", True, gelu_tanh) for s in seqs])
    if qtype == "F16":
        assert np.abs(got - want).max() < 2e-5
    else:
        assert min(cosine(a, b) for a, b in zip(got, want)) > 0.999


def test_no_biases():
    enc, ref = build(random_weights(4), biases=False)
    seqs, tokens, starts = packed(5)
    want = np.array([ref.embed(s, "mean", True, gelu_tanh) for s in seqs])
    assert np.abs(enc.forward(tokens, starts) - want).max() < 2e-5


def test_batch_equals_one_at_a_time_and_threads_do_not_matter():
    enc, _ = build(random_weights(6), "Q8_0")
    seqs, tokens, starts = packed(7)
    batch = enc.forward(tokens, starts, n_threads=2)
    alone = np.concatenate([enc.forward(np.array(s), np.array([0, len(s)]), n_threads=1) for s in seqs])
    assert np.array_equal(batch, alone)


def test_forward_errors():
    enc, _ = build(random_weights())
    tokens, starts = np.arange(6, dtype=np.int32), np.array([0, 2, 6])
    with pytest.raises(ValueError, match="pooling"):
        enc.forward(tokens, starts, "max")
    with pytest.raises(ValueError, match="tokens"):
        enc.forward(np.array([0, VOCAB]), np.array([0, 2]))
    with pytest.raises(ValueError, match="tokens"):
        enc.forward(np.array([], np.int32), np.array([0]))
    with pytest.raises(ValueError, match="seq_start"):
        enc.forward(tokens, np.array([0, 4]))
    with pytest.raises(ValueError, match=f"{N_POS} positions"):
        enc.forward(np.zeros(N_POS + 1, np.int32), np.array([0, N_POS + 1]))


def test_construction_errors():
    w = random_weights()
    bad = dict(w)
    bad["blk.1.ffn_up.weight"] = w["blk.1.ffn_up.weight"][:, :-1].copy()
    with pytest.raises(ValueError, match=r"blk\.1\.ffn_up: expected 128 rows of 64"):
        build(bad)
    with pytest.raises(ValueError, match="gelu"):
        ck.Encoder({"n_embd": E, "n_head": HEADS, "n_ff": FF, "n_vocab": VOCAB, "n_pos": N_POS, "norm_eps": 1e-12,
                    "gelu": "quick"}, {}, [])
    with pytest.raises(ValueError, match="multiple of n_head"):
        ck.Encoder({"n_embd": E, "n_head": 5, "n_ff": FF, "n_vocab": VOCAB, "n_pos": N_POS, "norm_eps": 1e-12}, {}, [])
