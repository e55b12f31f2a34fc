"""The llama architecture (Llama, Mistral, SmolLM2, TinyLlama, ...) and Qwen2, which runs the same
graph with Q/K/V biases and NeoX-style RoPE, read from GGUF hyper-parameters.

The weights stay in the file's mmap: the C decoder (kernels/decoder.c) reads the quantized blocks
where they lie, so loading costs no more memory than the page cache.
"""
from __future__ import annotations

from gpt4all_core.errors import UnsupportedModelError
from gpt4all_core.models.base import Model, ModelFileError

# RoPE layout per architecture: llama.cpp's converter permutes llama's Q/K rows for pairs (2i, 2i+1),
# Qwen2 keeps Hugging Face's halves (NeoX).
ROPE_MODES = {"llama": "normal", "qwen2": "neox"}
ARCHITECTURES = tuple(ROPE_MODES)


class LlamaModel(Model):
    """A llama-family model: load(path) picks this class for the architectures in ARCHITECTURES."""

    def _build(self) -> None:
        f, arch = self.gguf, self.architecture
        if arch not in ROPE_MODES:
            raise UnsupportedModelError(f"{self.path}: architecture {arch!r} is not a llama-family model")
        n_embd = self._key("embedding_length", int)
        n_head = self._key("attention.head_count", int)
        n_head_kv = self._key("attention.head_count_kv", int, n_head)
        head_dim = self._key("attention.key_length", int, n_embd // n_head if n_head else 0)
        if self._key("attention.value_length", int, head_dim) != head_dim:
            raise UnsupportedModelError(f"{self.path}: key and value head sizes differ, which we do not run")
        n_vocab = f.tensors["token_embd.weight"].shape[0] if "token_embd.weight" in f.tensors else 0
        hp = {
            "n_block": self._key("block_count", int), "n_embd": n_embd, "n_head": n_head, "n_head_kv": n_head_kv,
            "head_dim": head_dim, "n_ff": self._key("feed_forward_length", int), "n_vocab": n_vocab,
            "norm_eps": self._key("attention.layer_norm_rms_epsilon", float, 1e-5),
            "n_ctx_train": self._key("context_length", int, 2048),
        }
        for name in ("n_block", "n_embd", "n_head", "n_ff"):
            if hp[name] < 1:
                raise ModelFileError(self.path, f"{arch}.* gives {name} = {hp[name]}; it must be positive")
        if n_head_kv < 1 or n_head % n_head_kv:
            raise ModelFileError(self.path, f"{arch}.attention.head_count_kv = {n_head_kv} does not divide "
                                 f"head_count = {n_head}")
        rope = self._rope(head_dim, hp["n_ctx_train"])
        glob = {
            "tok_embd": self._tensor("token_embd.weight", (n_vocab, n_embd)),
            "output_norm": self._vector("output_norm.weight", n_embd),
            # tied embeddings: no output.weight, the embedding table doubles as the output projection
            "output": self._tensor("output.weight" if "output.weight" in f.tensors else "token_embd.weight",
                                   (n_vocab, n_embd)),
        }
        blocks = [self._block(i, hp, rope) for i in range(hp["n_block"])]
        self.hparams = hp
        self.decoder = self._make_decoder({k: v for k, v in hp.items() if k not in ("n_block", "n_ctx_train")},
                                           glob, blocks)

    def _rope(self, head_dim: int, n_ctx_train: int) -> dict:
        """RoPE as llama.cpp reads it: base, linear or YaRN scaling, llama3's frequency factors."""
        rope = {"n_rot": self._key("rope.dimension_count", int, head_dim), "mode": ROPE_MODES[self.architecture],
                "freq_base": self._key("rope.freq_base", float, 10000.0)}
        # as llama.cpp: the type defaults to linear, and the old key rope.scale_linear is the factor
        kind = self._key("rope.scaling.type", str, "linear")
        factor = self._key("rope.scaling.factor", float, 0.0) or self._key("rope.scale_linear", float, 0.0)
        if kind not in ("none", "linear", "yarn"):
            raise UnsupportedModelError(f"{self.path}: RoPE scaling {kind!r} is not supported (none, linear, yarn)")
        if kind != "none" and factor > 0:
            rope["freq_scale"] = 1.0 / factor
        if kind == "yarn":
            rope["ext_factor"] = 1.0
            rope["n_ctx_orig"] = self._key("rope.scaling.original_context_length", int, n_ctx_train)
            rope["attn_factor"] = self._key("rope.scaling.attn_factor", float, 1.0)
        if "rope_freqs.weight" in self.gguf.tensors:
            rope["freq_factors"] = self._vector("rope_freqs.weight", rope["n_rot"] // 2)
        return rope

    def _block(self, i: int, hp: dict, rope: dict) -> dict:
        e, q_dim, kv_dim = hp["n_embd"], hp["n_head"] * hp["head_dim"], hp["n_head_kv"] * hp["head_dim"]
        p = f"blk.{i}."
        blk = {
            "attn_norm": self._vector(p + "attn_norm.weight", e), "ffn_norm": self._vector(p + "ffn_norm.weight", e),
            "wq": self._tensor(p + "attn_q.weight", (q_dim, e)), "wk": self._tensor(p + "attn_k.weight", (kv_dim, e)),
            "wv": self._tensor(p + "attn_v.weight", (kv_dim, e)), "wo": self._tensor(p + "attn_output.weight", (e, q_dim)),
            "ffn_gate": self._tensor(p + "ffn_gate.weight", (hp["n_ff"], e)),
            "ffn_up": self._tensor(p + "ffn_up.weight", (hp["n_ff"], e)),
            "ffn_down": self._tensor(p + "ffn_down.weight", (e, hp["n_ff"])),
            "rope": rope, "window": 0,
        }
        if p + "ffn_gate_inp.weight" in self.gguf.tensors:
            raise UnsupportedModelError(f"{self.path}: mixture-of-experts llama files (Mixtral) are not supported")
        for name, key, n in (("bq", "attn_q.bias", q_dim), ("bk", "attn_k.bias", kv_dim),
                             ("bv", "attn_v.bias", kv_dim), ("bo", "attn_output.bias", e)):
            if p + key in self.gguf.tensors:
                blk[name] = self._vector(p + key, n)
        return blk

