"""A float64 numpy llama/Qwen2 forward pass, written from the architecture's definition, to check
the C decoder and the session's KV-cache shift against.

It keeps, per block, each cached token's key *before* RoPE and its value, and rotates the keys to
their current positions at every step: context erase is then just deleting entries, which is
what the session's shift (move + re-rotate in place) must be equivalent to.
"""
from __future__ import annotations

import gguf as gguf_py
import numpy as np

from gpt4all_core import gguf


def _rope(x: np.ndarray, pos: np.ndarray, base: float, neox: bool) -> np.ndarray:
    """x [n, heads, d] rotated by positions pos [n]."""
    d = x.shape[-1]
    half = d // 2
    theta = pos[:, None].astype(np.float64) * base ** (-np.arange(half) * 2.0 / d)[None, :]  # [n, half]
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    out = x.copy()
    if neox:
        a, b = x[..., :half], x[..., half:]
        out[..., :half], out[..., half:] = a * c - b * s, a * s + b * c
    else:
        a, b = x[..., 0::2], x[..., 1::2]
        out[..., 0::2], out[..., 1::2] = a * c - b * s, a * s + b * c
    return out


def _rms(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


class ReferenceLlama:
    def __init__(self, path):
        with gguf.open(path) as f:
            arch = f.metadata["general.architecture"]
            self.neox = arch == "qwen2"
            g = lambda k, d=None: f.metadata.get(f"{arch}.{k}", d)  # noqa: E731
            self.n_block, self.n_head = g("block_count"), g("attention.head_count")
            self.n_head_kv = g("attention.head_count_kv", self.n_head)
            self.eps, self.base = g("attention.layer_norm_rms_epsilon"), g("rope.freq_base", 10000.0)
            self.w = {}
            for name, t in f.tensors.items():
                data = t.data if t.data.dtype != np.uint16 else t.data.view(np.uint8)
                values = gguf_py.quants.dequantize(np.array(data), gguf_py.GGMLQuantizationType(int(t.type)))
                self.w[name] = np.asarray(values, np.float64).reshape(t.shape)
        if "output.weight" not in self.w:
            self.w["output.weight"] = self.w["token_embd.weight"]
        self.reset()

    def reset(self) -> None:
        self.k_pre = [[] for _ in range(self.n_block)]  # per block: keys before RoPE, one [kv_heads, d] per token
        self.v = [[] for _ in range(self.n_block)]

    def erase(self, keep: int, n_discard: int) -> None:
        for lst in self.k_pre + self.v:
            del lst[keep:keep + n_discard]

    def feed(self, tokens: list[int]) -> np.ndarray:
        """Appends tokens (positions continue from the cached count); logits [len(tokens), n_vocab]."""
        w, n = self.w, len(tokens)
        start = len(self.k_pre[0])
        pos = np.arange(start, start + n)
        x = w["token_embd.weight"][tokens]
        for i in range(self.n_block):
            p = f"blk.{i}."
            h = _rms(x, w[p + "attn_norm.weight"], self.eps)
            q, k, v = (h @ w[p + f"attn_{c}.weight"].T + w.get(p + f"attn_{c}.bias", 0.0) for c in "qkv")
            d = q.shape[1] // self.n_head
            q, k, v = q.reshape(n, self.n_head, d), k.reshape(n, self.n_head_kv, d), v.reshape(n, self.n_head_kv, d)
            self.k_pre[i] += list(k)
            self.v[i] += list(v)
            total = len(self.k_pre[i])
            keys = _rope(np.array(self.k_pre[i]), np.arange(total), self.base, self.neox)
            vals = np.array(self.v[i])
            q = _rope(q, pos, self.base, self.neox)
            group = self.n_head // self.n_head_kv
            att = np.empty_like(q)
            for hh in range(self.n_head):
                s = q[:, hh] @ keys[:, hh // group].T / np.sqrt(d)  # [n, total]
                s[np.arange(total)[None, :] > pos[:, None]] = -np.inf
                s = np.exp(s - s.max(1, keepdims=True))
                att[:, hh] = (s / s.sum(1, keepdims=True)) @ vals[:, hh // group]
            x = x + att.reshape(n, -1) @ w[p + "attn_output.weight"].T
            h = _rms(x, w[p + "ffn_norm.weight"], self.eps)
            gate, up = h @ w[p + "ffn_gate.weight"].T, h @ w[p + "ffn_up.weight"].T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "ffn_down.weight"].T
        return _rms(x, w["output_norm.weight"], self.eps) @ w["output.weight"].T
