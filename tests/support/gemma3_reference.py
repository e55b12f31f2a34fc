"""A float64 numpy Gemma 3 forward pass, written from the architecture's definition (Google's
gemma_pytorch / Hugging Face's Gemma3ForCausalLM, with the GGUF conventions of llama.cpp's
converter: norm weights stored as 1 + w, Q/K rows in NeoX order), to check the C decoder and the
session's KV-cache shift against. Like ReferenceLlama it keeps each cached key before RoPE and
rotates them all to their current positions at every step, so context erase is deleting entries.

What differs from llama: embeddings times sqrt(n_embd); an RMS norm over each head of Q and K
before RoPE; RMS norms after attention and after the FFN, before each residual add; GELU (tanh)
gating; local blocks that see only the last `window` positions (p_q - p_k < window) and rotate
with their own base; the global ones every `period`-th block (or as a per-block flag array says);
tied output; optional final soft-capping c * tanh(logits / c).
"""
from __future__ import annotations

import numpy as np
from llama_reference import ReferenceLlama, _rms, _rope

from gpt4all_core import gguf


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


class ReferenceGemma3(ReferenceLlama):
    def __init__(self, path):
        super().__init__(path)  # weights in float64, block and head counts, eps, rope.freq_base
        self.neox = True
        with gguf.open(path) as f:
            g = lambda k, d=None: f.metadata.get(f"gemma3.{k}", d)  # noqa: E731
            self.n_embd = g("embedding_length")
            self.head_dim = g("attention.key_length", self.n_embd // self.n_head)
            self.window = g("attention.sliding_window", 0)
            self.base_local = g("rope.freq_base_swa", 10000.0)
            self.softcap = g("final_logit_softcapping", 0.0)
            pattern = g("attention.sliding_window_pattern", 6)
        if isinstance(pattern, (list, np.ndarray)):
            self.local = [bool(v) for v in pattern]
        else:
            self.local = [pattern == 0 or i % pattern != pattern - 1 for i in range(self.n_block)]
        if not self.window:
            self.local = [False] * self.n_block
        # query_pre_attn_scalar: head_dim for every size but the 27B model (62 blocks): n_embd / n_head
        self.scale = (self.n_embd / self.n_head if self.n_block == 62 else self.head_dim) ** -0.5

    def feed(self, tokens: list[int]) -> np.ndarray:
        """Appends tokens (positions continue from the cached count); logits [len(tokens), n_vocab]."""
        w, n, d = self.w, len(tokens), self.head_dim
        start = len(self.k_pre[0])
        pos = np.arange(start, start + n)
        x = w["token_embd.weight"][tokens] * np.sqrt(self.n_embd)
        group = self.n_head // self.n_head_kv
        for i in range(self.n_block):
            p = f"blk.{i}."
            base = self.base_local if self.local[i] else self.base
            h = _rms(x, w[p + "attn_norm.weight"], self.eps)
            q = _rms((h @ w[p + "attn_q.weight"].T).reshape(n, self.n_head, d), w[p + "attn_q_norm.weight"], self.eps)
            k = _rms((h @ w[p + "attn_k.weight"].T).reshape(n, self.n_head_kv, d), w[p + "attn_k_norm.weight"],
                     self.eps)
            v = (h @ w[p + "attn_v.weight"].T).reshape(n, self.n_head_kv, d)
            self.k_pre[i] += list(k)
            self.v[i] += list(v)
            total = len(self.k_pre[i])
            keys = _rope(np.array(self.k_pre[i]), np.arange(total), base, True)
            vals = np.array(self.v[i])
            q = _rope(q, pos, base, True)
            dist = pos[:, None] - np.arange(total)[None, :]  # query position - key position
            hidden = (dist < 0) | ((dist >= self.window) if self.local[i] else False)
            att = np.empty_like(q)
            for hh in range(self.n_head):
                s = q[:, hh] @ keys[:, hh // group].T * self.scale
                s[hidden] = -np.inf
                s = np.exp(s - s.max(1, keepdims=True))
                att[:, hh] = (s / s.sum(1, keepdims=True)) @ vals[:, hh // group]
            x = x + _rms(att.reshape(n, -1) @ w[p + "attn_output.weight"].T, w[p + "post_attention_norm.weight"],
                         self.eps)
            h = _rms(x, w[p + "ffn_norm.weight"], self.eps)
            gated = _gelu_tanh(h @ w[p + "ffn_gate.weight"].T) * (h @ w[p + "ffn_up.weight"].T)
            ffn = gated @ w[p + "ffn_down.weight"].T
            x = x + _rms(ffn, w[p + "post_ffw_norm.weight"], self.eps)
        logits = _rms(x, w["output_norm.weight"], self.eps) @ w["output.weight"].T
        if self.softcap:
            logits = self.softcap * np.tanh(logits / self.softcap)
        return logits
