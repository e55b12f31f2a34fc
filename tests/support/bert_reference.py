"""A float64 numpy BERT, written from the Hugging Face definition (BertModel: embeddings, post-norm
blocks, exact erf GELU) plus sentence-transformers' pooling and normalization, to check the C
encoder and the converter against.

Two sources for the weights: the Hugging Face folder itself (safetensors, read independently of
gpt4all_core.convert, with the Hugging Face tensor names), or a GGUF file (dequantized by the
`gguf` package), so that a quantized file can be compared with the exact product of its own weights.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import gguf as gguf_py
import numpy as np
from safetensors.numpy import load_file

from gpt4all_core import gguf

_HF_BLOCK = {"attn_q": "attention.self.query", "attn_k": "attention.self.key", "attn_v": "attention.self.value",
             "attn_output": "attention.output.dense", "attn_output_norm": "attention.output.LayerNorm",
             "ffn_up": "intermediate.dense", "ffn_down": "output.dense", "layer_output_norm": "output.LayerNorm"}
_HF_GLOBAL = {"token_embd": "embeddings.word_embeddings", "token_types": "embeddings.token_type_embeddings",
              "position_embd": "embeddings.position_embeddings", "token_embd_norm": "embeddings.LayerNorm"}
_ERF = np.vectorize(math.erf, otypes=[np.float64])


def gelu_erf(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class ReferenceBert:
    """w: GGUF-named float64 weights; n_head, eps."""

    def __init__(self, w: dict[str, np.ndarray], n_block: int, n_head: int, eps: float):
        self.w, self.n_block, self.n_head, self.eps = w, n_block, n_head, eps

    @classmethod
    def from_hf(cls, folder: Path) -> "ReferenceBert":
        config = json.loads((folder / "config.json").read_text())
        raw = load_file(str(folder / "model.safetensors"))
        w = {}
        for name, hf in _HF_GLOBAL.items():
            for part in ("weight", "bias"):
                if f"{hf}.{part}" in raw:
                    w[f"{name}.{part}"] = raw[f"{hf}.{part}"].astype(np.float64)
        for i in range(config["num_hidden_layers"]):
            for name, hf in _HF_BLOCK.items():
                for part in ("weight", "bias"):
                    w[f"blk.{i}.{name}.{part}"] = raw[f"encoder.layer.{i}.{hf}.{part}"].astype(np.float64)
        return cls(w, config["num_hidden_layers"], config["num_attention_heads"], config["layer_norm_eps"])

    @classmethod
    def from_gguf(cls, path: Path) -> "ReferenceBert":
        with gguf.open(path) as f:
            md = f.metadata
            w = {}
            for name, t in f.tensors.items():
                data = np.array(t.data if t.data.dtype != np.uint16 else t.data.view(np.uint8))
                values = gguf_py.quants.dequantize(data, gguf_py.GGMLQuantizationType(int(t.type)))
                w[name] = np.asarray(values, np.float64).reshape(t.shape)
            return cls(w, md["bert.block_count"], md["bert.attention.head_count"],
                       md["bert.attention.layer_norm_epsilon"])

    def hidden_states(self, tokens: list[int], gelu=gelu_erf) -> np.ndarray:
        """[len(tokens), n_embd]: the last block's output for one sequence (token type 0 throughout)."""
        w, n = self.w, len(tokens)
        x = w["token_embd.weight"][tokens] + w["position_embd.weight"][:n]
        if "token_types.weight" in w:
            x = x + w["token_types.weight"][0]
        x = _layer_norm(x, w["token_embd_norm.weight"], w["token_embd_norm.bias"], self.eps)
        e = x.shape[1]
        d = e // self.n_head
        for i in range(self.n_block):
            p = f"blk.{i}."

            def lin(name: str, v: np.ndarray) -> np.ndarray:
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (lin(n_, x).reshape(n, self.n_head, d) for n_ in ("attn_q", "attn_k", "attn_v"))
            s = np.einsum("thd,jhd->htj", q, k) / math.sqrt(d)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            att = np.einsum("htj,jhd->thd", s, v).reshape(n, e)
            x = _layer_norm(lin("attn_output", att) + x, w[p + "attn_output_norm.weight"],
                            w[p + "attn_output_norm.bias"], self.eps)
            h = lin("ffn_down", gelu(lin("ffn_up", x)))
            x = _layer_norm(h + x, w[p + "layer_output_norm.weight"], w[p + "layer_output_norm.bias"], self.eps)
        return x

    def embed(self, tokens: list[int], pooling: str = "mean", normalize: bool = True, gelu=gelu_erf) -> np.ndarray:
        h = self.hidden_states(tokens, gelu)
        v = {"mean": h.mean(0), "cls": h[0], "last": h[-1]}[pooling]
        return v / max(np.linalg.norm(v), 1e-12) if normalize else v


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
