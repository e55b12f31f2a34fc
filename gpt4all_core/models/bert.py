"""The bert architecture (sentence embedders: all-MiniLM, BGE, E5 and the like), read from GGUF
files in llama.cpp's layout (see gpt4all_core.convert for writing them).

A batch of texts is packed without padding and run in one C call (kernels/encoder.c): the matrix
products cover every token of the batch at once, attention stays inside each text, and the
pooling named by `bert.pooling_type` (mean, CLS or last token) reads only a text's own tokens.
Embeddings come L2-normalized, as GPT4All and sentence-transformers give them.

Where llama.cpp leaves a choice open, we do as it does: every token has token type 0, the GELU is
the tanh form (ggml_gelu), the weights stay in the file's mmap.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gpt4all_core.backend import cpu_kernels
from gpt4all_core.errors import UnsupportedModelError
from gpt4all_core.models.base import Model, ModelFileError

ARCHITECTURES = ("bert",)
POOLING = cpu_kernels.POOLING  # ("none", "mean", "cls", "last"): index = bert.pooling_type
BATCH_TOKENS = 2048  # tokens per C call: GPT4All's n_batch for embedding models (n_ctx 2048)


class BertModel(Model):
    """A BERT encoder: load(path) picks this class for `general.architecture = bert`."""

    is_embedding_model = True

    def _build(self) -> None:
        f, arch = self.gguf, self.architecture
        if arch not in ARCHITECTURES:
            raise UnsupportedModelError(f"{self.path}: architecture {arch!r} is not BERT")
        if self._key("attention.causal", bool, False):
            raise UnsupportedModelError(f"{self.path}: bert.attention.causal is true; BERT encoders are "
                                        "bidirectional and a causal one is not supported")
        n_embd = self._key("embedding_length", int)
        hp = {"n_block": self._key("block_count", int), "n_embd": n_embd, "n_head": self._key("attention.head_count", int),
              "n_ff": self._key("feed_forward_length", int), "n_ctx_train": self._key("context_length", int),
              "norm_eps": self._key("attention.layer_norm_epsilon", float, 1e-12)}
        for name, value in hp.items():
            if name != "norm_eps" and value < 1:
                raise ModelFileError(self.path, f"{name} = {value}; it must be positive")
        if n_embd % hp["n_head"]:
            raise ModelFileError(self.path, f"embedding_length {n_embd} is not a multiple of head_count "
                                 f"{hp['n_head']}", "bert.attention.head_count")
        # llama.cpp's default is no pooling; GPT4All then takes the last token's state
        pooling = self._key("pooling_type", int, 0)
        if not 0 <= pooling < len(POOLING):
            raise UnsupportedModelError(f"{self.path}: bert.pooling_type = {pooling}; supported: "
                                        + ", ".join(f"{i} ({p})" for i, p in enumerate(POOLING)))
        hp["pooling"] = POOLING[pooling]
        n_vocab = f.tensors["token_embd.weight"].shape[0] if "token_embd.weight" in f.tensors else 0
        hp["n_vocab"] = n_vocab
        e, ff, ctx = n_embd, hp["n_ff"], hp["n_ctx_train"]
        glob = {"tok_embd": self._tensor("token_embd.weight", (n_vocab, e)),
                "pos_embd": self._tensor("position_embd.weight", (ctx, e)),
                "type_embd": None,
                "embd_norm_w": self._vector("token_embd_norm.weight", e),
                "embd_norm_b": self._vector("token_embd_norm.bias", e)}
        if "token_types.weight" in f.tensors:  # every token is type 0 ("sentence A"), as in llama.cpp
            t = f.tensors["token_types.weight"]
            if len(t.shape) != 2 or t.shape[1] != e:
                raise ModelFileError(self.path, f"tensor has shape {t.shape}, expected (n_types, {e})",
                                     "token_types.weight")
            rows = t.data.reshape(t.shape[0], -1).view(np.uint8)
            glob["type_embd"] = cpu_kernels.dequantize(rows[:1], int(t.type)).reshape(-1)
        blocks = [self._block(i, e, ff) for i in range(hp["n_block"])]
        self.hparams = hp
        self.encoder = cpu_kernels.Encoder(
            {"n_embd": e, "n_head": hp["n_head"], "n_ff": ff, "n_vocab": n_vocab, "n_pos": ctx,
             "norm_eps": hp["norm_eps"]}, glob, blocks)

    def _block(self, i: int, e: int, ff: int) -> dict:
        p = f"blk.{i}."
        blk = {"wq": self._tensor(p + "attn_q.weight", (e, e)), "wk": self._tensor(p + "attn_k.weight", (e, e)),
               "wv": self._tensor(p + "attn_v.weight", (e, e)), "wo": self._tensor(p + "attn_output.weight", (e, e)),
               "ffn_up": self._tensor(p + "ffn_up.weight", (ff, e)),
               "ffn_down": self._tensor(p + "ffn_down.weight", (e, ff)),
               "attn_norm_w": self._vector(p + "attn_output_norm.weight", e),
               "attn_norm_b": self._vector(p + "attn_output_norm.bias", e),
               "out_norm_w": self._vector(p + "layer_output_norm.weight", e),
               "out_norm_b": self._vector(p + "layer_output_norm.bias", e)}
        if p + "attn_qkv.weight" in self.gguf.tensors:
            raise UnsupportedModelError(f"{self.path}: fused attn_qkv tensors are not supported")
        for name, key, n in (("bq", "attn_q.bias", e), ("bk", "attn_k.bias", e), ("bv", "attn_v.bias", e),
                             ("bo", "attn_output.bias", e), ("ffn_up_b", "ffn_up.bias", ff),
                             ("ffn_down_b", "ffn_down.bias", e)):
            if p + key in self.gguf.tensors:  # optional, as in llama.cpp
                blk[name] = self._vector(p + key, n)
        return blk

    # ---- properties ----

    @property
    def n_vocab(self) -> int:
        return self.encoder.n_vocab

    @property
    def n_embd(self) -> int:
        return self.encoder.n_embd

    @property
    def pooling(self) -> str:
        """The file's pooling ("mean", "cls", "last" or "none")."""
        return self.hparams["pooling"]

    def new_cache(self, n_ctx: int, f16: bool = True):
        raise UnsupportedModelError(f"{self.path}: a BERT encoder has no KV cache and does not generate text")

    # ---- embeddings ----

    def embed_tokens(self, sequences: Sequence[Sequence[int]], *, pooling: str | None = None, normalize: bool = True,
                     n_threads: int | None = None) -> np.ndarray:
        """float32 [len(sequences), n_embd]: each token sequence (framed by the caller, e.g. with
        [CLS] ... [SEP]) pooled and, if normalize, scaled to unit length; all in one C call.
        pooling defaults to the file's ("none" is taken as GPT4All takes it: the last token)."""
        if not sequences:
            raise ValueError("sequences: at least one sequence is needed")
        pooling = pooling or self.pooling
        if pooling == "none":
            pooling = "last"
        lengths = [len(s) for s in sequences]
        if min(lengths) < 1:
            raise ValueError(f"sequences: sequence {lengths.index(0)} is empty")
        starts = np.zeros(len(sequences) + 1, np.int64)
        np.cumsum(lengths, out=starts[1:])
        tokens = np.fromiter((t for s in sequences for t in s), np.int32, count=int(starts[-1]))
        return self.encoder.forward(tokens, starts, pooling, normalize, n_threads)

    def frame(self, tokens: Sequence[int]) -> list[int]:
        """[CLS] tokens [SEP], as the tokenizer frames a text."""
        tok = self.tokenizer
        return [tok.bos_id, *tokens, tok.vocab.special["separator"]]

    def embed(self, texts: str | Sequence[str], *, pooling: str | None = None, normalize: bool = True,
              n_threads: int | None = None, batch_tokens: int = BATCH_TOKENS) -> np.ndarray:
        """Embeddings of texts (one text: [n_embd]; a list: [n, n_embd]), each text cut to the
        model's context; batches of up to batch_tokens tokens per C call."""
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        if not items or not all(isinstance(t, str) for t in items):
            raise ValueError("texts must be a string or a non-empty list of strings")
        limit = self.n_ctx_train - 2
        seqs = [self.frame(self.tokenizer.encode(t, add_special=False)[:limit]) for t in items]
        out = np.concatenate([self.embed_tokens(b, pooling=pooling, normalize=normalize, n_threads=n_threads)
                              for b in token_batches(seqs, batch_tokens)])
        return out[0] if single else out

    def close(self) -> None:
        self.encoder = None
        super().close()


def token_batches(seqs: list, batch_tokens: int) -> list[list]:
    """seqs cut into consecutive batches of at most batch_tokens tokens (a longer sequence alone)."""
    batches: list[list] = [[]]
    used = 0
    for s in seqs:
        if batches[-1] and used + len(s) > batch_tokens:
            batches.append([])
            used = 0
        batches[-1].append(s)
        used += len(s)
    return batches
