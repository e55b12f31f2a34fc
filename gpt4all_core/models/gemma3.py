"""The gemma3 architecture (Gemma 3 text models, 270M to 27B), read from GGUF hyper-parameters.

The graph is the llama one with Gemma's switches, all of which kernels/decoder.c already has:
embeddings scaled by sqrt(n_embd); RMS norms whose weights llama.cpp's converter has already
turned into (1 + w), so the file's values are used as they are; an RMS norm over each head of Q
and of K (before RoPE); a norm after attention and one after the FFN, each before its residual
add; GELU (tanh form) gating the FFN; NeoX-style RoPE; tied output (token_embd doubles as the
output projection unless output.weight is present); final logit soft-capping when the file sets
`gemma3.final_logit_softcapping`.

Sliding-window attention: with `gemma3.attention.sliding_window` = W > 0, the local blocks see
only keys at positions p_k > p_q - W (llama.cpp masks p_q - p_k >= W) and rotate with their own
base, `gemma3.rope.freq_base_swa` (10000 by default) and no scaling; the global blocks see
everything and use `rope.freq_base` with the file's linear scaling. Which blocks are local is
`gemma3.attention.sliding_window_pattern`: an array of flags per block, or a period n (block i
global when i % n == n - 1; n = 0: all local); without the key, every 6th block is global.
These are llama.cpp's rules (src/models/gemma3.cpp, llama-hparams.cpp).
"""
from __future__ import annotations

import math

import numpy as np

from gpt4all_core.errors import UnsupportedModelError
from gpt4all_core.models.base import Model, ModelFileError

ARCHITECTURES = ("gemma3",)
DEFAULT_SWA_PERIOD = 6   # llama.cpp's default pattern: five local blocks, then one global
LOCAL_ROPE_BASE = 10000.0


class Gemma3Model(Model):
    """A Gemma 3 text model: load(path) picks this class for general.architecture = gemma3."""

    def _build(self) -> None:
        f, arch = self.gguf, self.architecture
        if arch not in ARCHITECTURES:
            raise UnsupportedModelError(f"{self.path}: architecture {arch!r} is not gemma3")
        n_embd = self._key("embedding_length", int)
        n_head = self._key("attention.head_count", int)
        n_head_kv = self._key("attention.head_count_kv", int, n_head)
        if n_head < 1 or n_embd < 1:
            raise ModelFileError(self.path, f"{arch}.* gives n_head = {n_head}, n_embd = {n_embd}; "
                                 "both must be positive")
        head_dim = self._key("attention.key_length", int, n_embd // n_head)
        self._same_or_unsupported("attention.value_length", head_dim, "value heads of another size than keys")
        for name in ("attention.key_length_swa", "attention.value_length_swa"):
            self._same_or_unsupported(name, head_dim, "local blocks with another head size")
        n_rot = self._key("rope.dimension_count", int, head_dim)
        self._same_or_unsupported("rope.dimension_count_swa", n_rot, "local blocks rotating another number of dims")
        n_vocab = f.tensors["token_embd.weight"].shape[0] if "token_embd.weight" in f.tensors else 0
        hp = {
            "n_block": self._key("block_count", int), "n_embd": n_embd, "n_head": n_head, "n_head_kv": n_head_kv,
            "head_dim": head_dim, "n_ff": self._key("feed_forward_length", int), "n_vocab": n_vocab,
            # llama.cpp requires this key for gemma3 (no default)
            "norm_eps": self._key("attention.layer_norm_rms_epsilon", float),
            "n_ctx_train": self._key("context_length", int, 2048),
        }
        for name in ("n_block", "n_ff", "head_dim"):
            if hp[name] < 1:
                raise ModelFileError(self.path, f"{arch}.* gives {name} = {hp[name]}; it must be positive")
        if n_head_kv < 1 or n_head % n_head_kv:
            raise ModelFileError(self.path, f"{arch}.attention.head_count_kv = {n_head_kv} does not divide "
                                 f"head_count = {n_head}", f"{arch}.attention.head_count_kv")
        if n_rot < 0 or n_rot % 2 or n_rot > head_dim:
            raise ModelFileError(self.path, f"rope.dimension_count = {n_rot} must be even and at most the head "
                                 f"size {head_dim}", f"{arch}.rope.dimension_count")
        # Gemma 3 scales queries by query_pre_attn_scalar^-1/2, which the GGUF does not carry:
        # llama.cpp (following gemma_pytorch's configs) takes 1/sqrt(head_dim), except for the 27B
        # model (62 blocks), whose scalar is n_embd / n_head.
        attn_dim = n_embd / n_head if hp["n_block"] == 62 else head_dim
        hp["attn_scale"] = 1.0 / math.sqrt(attn_dim)
        hp["embd_scale"] = math.sqrt(n_embd)
        hp["final_softcap"] = self._key("final_logit_softcapping", float, 0.0)
        if hp["final_softcap"] < 0:
            raise ModelFileError(self.path, f"must not be negative, found {hp['final_softcap']}",
                                 f"{arch}.final_logit_softcapping")
        hp["act"] = "gelu"
        hp["window"] = self._key("attention.sliding_window", int, 0)
        if hp["window"] < 0:
            raise ModelFileError(self.path, f"must not be negative, found {hp['window']}",
                                 f"{arch}.attention.sliding_window")
        local = self._local_blocks(hp["n_block"]) if hp["window"] > 0 else [False] * hp["n_block"]
        hp["local_blocks"] = [i for i, is_local in enumerate(local) if is_local]
        global_rope = self._global_rope(n_rot)
        local_rope = {"n_rot": n_rot, "mode": "neox",
                      "freq_base": self._key("rope.freq_base_swa", float, LOCAL_ROPE_BASE)}
        glob = {
            "tok_embd": self._tensor("token_embd.weight", (n_vocab, n_embd)),
            "output_norm": self._vector("output_norm.weight", n_embd),
            "output": self._tensor("output.weight" if "output.weight" in f.tensors else "token_embd.weight",
                                   (n_vocab, n_embd)),
        }
        blocks = [self._block(i, hp, local_rope if local[i] else global_rope, hp["window"] if local[i] else 0)
                  for i in range(hp["n_block"])]
        self.hparams = hp
        self.decoder = self._make_decoder(
            {k: v for k, v in hp.items() if k not in ("n_block", "n_ctx_train", "window", "local_blocks")},
            glob, blocks)

    def _same_or_unsupported(self, name: str, expected: int, what: str) -> None:
        value = self._key(name, int, expected)
        if value != expected:
            raise UnsupportedModelError(f"{self.path}: {self.architecture}.{name} = {value} (expected {expected}): "
                                        f"{what} is not supported")

    def _local_blocks(self, n_block: int) -> list[bool]:
        """Per block, whether it uses the sliding window (llama.cpp's load_swa_pattern)."""
        key = f"{self.architecture}.attention.sliding_window_pattern"
        value = self.gguf.get(key)
        if value is None:
            period = DEFAULT_SWA_PERIOD
        elif isinstance(value, (list, np.ndarray)):  # one flag per block, nonzero: local
            flags = [bool(v) for v in np.asarray(value).reshape(-1)]
            if len(flags) != n_block:
                raise ModelFileError(self.path, f"has {len(flags)} flags for {n_block} blocks", key)
            return flags
        else:
            period = self._key("attention.sliding_window_pattern", int)
            if period < 0:
                raise ModelFileError(self.path, f"must not be negative, found {period}", key)
        return [period == 0 or i % period < period - 1 for i in range(n_block)]

    def _global_rope(self, n_rot: int) -> dict:
        """The global blocks' RoPE: rope.freq_base with the file's linear scaling, if any."""
        rope = {"n_rot": n_rot, "mode": "neox", "freq_base": self._key("rope.freq_base", float, 10000.0)}
        kind = self._key("rope.scaling.type", str, "linear")
        if kind not in ("none", "linear"):
            raise UnsupportedModelError(f"{self.path}: {self.architecture}.rope.scaling.type = {kind!r} is not "
                                        "supported for gemma3 (none, linear)")
        # as llama.cpp: the factor (or the older key holding the same number) divides the angles,
        # unless the scaling type is "none"
        factor = self._key("rope.scaling.factor", float, 0.0) or self._key("rope.scale_linear", float, 0.0)
        if factor < 0:
            raise ModelFileError(self.path, f"must not be negative, found {factor}",
                                 f"{self.architecture}.rope.scaling.factor")
        if factor > 0 and kind == "linear":
            rope["freq_scale"] = 1.0 / factor
        return rope

    def _block(self, i: int, hp: dict, rope: dict, window: int) -> dict:
        e, d = hp["n_embd"], hp["head_dim"]
        q_dim, kv_dim, n_ff = hp["n_head"] * d, hp["n_head_kv"] * d, hp["n_ff"]
        p = f"blk.{i}."
        return {
            "attn_norm": self._vector(p + "attn_norm.weight", e),
            "attn_q_norm": self._vector(p + "attn_q_norm.weight", d),
            "attn_k_norm": self._vector(p + "attn_k_norm.weight", d),
            "attn_post_norm": self._vector(p + "post_attention_norm.weight", e),
            "ffn_norm": self._vector(p + "ffn_norm.weight", e),
            "ffn_post_norm": self._vector(p + "post_ffw_norm.weight", e),
            "wq": self._tensor(p + "attn_q.weight", (q_dim, e)),
            "wk": self._tensor(p + "attn_k.weight", (kv_dim, e)),
            "wv": self._tensor(p + "attn_v.weight", (kv_dim, e)),
            "wo": self._tensor(p + "attn_output.weight", (e, q_dim)),
            "ffn_gate": self._tensor(p + "ffn_gate.weight", (n_ff, e)),
            "ffn_up": self._tensor(p + "ffn_up.weight", (n_ff, e)),
            "ffn_down": self._tensor(p + "ffn_down.weight", (e, n_ff)),
            "rope": rope, "window": window,
        }
