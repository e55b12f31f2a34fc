"""Random-weight model files: llama-, Qwen2- and Gemma 3-shaped GGUF files of any size, with a real
tokenizer copied from a vocab-only GGUF (one of llama.cpp's ggml-vocab-*.gguf) so that llama.cpp
loads them too. The tests write small ones (tests/support/model_files.py), the benchmarks big ones
(benchmarks/e2e.py, benchmarks/gpu/make_models.py).

    write_random_model("m.gguf", "ggml-vocab-llama-spm.gguf", LLAMA_1B, "Q4_0", threads=16)

Weights are normal, scaled so that activations stay O(1); norm weights are centred on 1 (Gemma 3's
stored as llama.cpp's converter stores them, already 1 + w). With threads=1 every tensor is drawn in
file order from one generator seeded with seed (the tests' files). With more threads each tensor has
its own generator, seeded with (seed, its index), and tensors are drawn and quantized in parallel
(numpy's generators and our quantizer release the GIL): a different file, just as reproducible.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from gpt4all_core import gguf
from gpt4all_core.backend import cpu_kernels
from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf import GGMLType, GGUFValueType, GGUFWriter

# llama.cpp's general.file_type (llama_ftype) of each qtype written here
FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15}


@dataclass(frozen=True)
class Shape:
    """The hyper-parameters. Gemma 3 only: head_dim (attention.key_length; n_embd / n_head when
    None), window (attention.sliding_window, 0: none), swa_pattern (attention.sliding_window_pattern:
    a period or one flag per block; None: no key), rope_base_swa (rope.freq_base_swa; None: no key)
    and final_softcap (final_logit_softcapping; 0: no key)."""
    arch: str = "llama"
    n_block: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 256
    tied: bool = False
    head_dim: int | None = None
    window: int = 0
    swa_pattern: int | tuple[bool, ...] | None = None
    rope_base_swa: float | None = None
    final_softcap: float = 0.0


LLAMA_1B = Shape(n_block=22, n_embd=2048, n_head=32, n_head_kv=4, n_ff=5632)    # TinyLlama-1.1B
LLAMA_7B = Shape(n_block=32, n_embd=4096, n_head=32, n_head_kv=32, n_ff=11008)  # Llama-2-7B (6.7B)


@dataclass(frozen=True)
class Weight:
    """One tensor: a matrix [rows, cols] of normal values times scale, or (cols == 0) a vector of
    rows values center + spread * normal."""
    name: str
    rows: int
    cols: int = 0
    scale: float = 1.0
    center: float = 0.0
    spread: float = 0.0


def tensor_plan(s: Shape, n_vocab: int) -> list[Weight]:
    """Every tensor of the file, in file order."""
    gemma = s.arch == "gemma3"
    hd = s.head_dim or s.n_embd // s.n_head
    q_dim, kv_dim = s.n_head * hd, s.n_head_kv * hd
    e, f = s.n_embd ** -0.5, s.n_ff ** -0.5

    def norm(name: str, n: int) -> Weight:
        return Weight(name, n, center=1.0, spread=0.1)

    # Gemma scales the embeddings by sqrt(n_embd): rows of norm ~3 keep them O(1), and tied logits
    # of a few units
    plan = [Weight("token_embd.weight", n_vocab, s.n_embd, 3 * e if gemma else 1.0),
            norm("output_norm.weight", s.n_embd)]
    if not s.tied:
        plan.append(Weight("output.weight", n_vocab, s.n_embd, e))
    for i in range(s.n_block):
        p = f"blk.{i}."
        plan += [norm(p + "attn_norm.weight", s.n_embd), norm(p + "ffn_norm.weight", s.n_embd)]
        if gemma:
            plan += [norm(p + "attn_q_norm.weight", hd), norm(p + "attn_k_norm.weight", hd),
                     norm(p + "post_attention_norm.weight", s.n_embd), norm(p + "post_ffw_norm.weight", s.n_embd)]
        plan += [Weight(p + "attn_q.weight", q_dim, s.n_embd, e), Weight(p + "attn_k.weight", kv_dim, s.n_embd, e),
                 Weight(p + "attn_v.weight", kv_dim, s.n_embd, e),
                 Weight(p + "attn_output.weight", s.n_embd, q_dim, q_dim ** -0.5),
                 Weight(p + "ffn_gate.weight", s.n_ff, s.n_embd, e), Weight(p + "ffn_up.weight", s.n_ff, s.n_embd, e),
                 Weight(p + "ffn_down.weight", s.n_embd, s.n_ff, f)]
        if s.arch == "qwen2":
            plan += [Weight(p + "attn_q.bias", q_dim, spread=0.5), Weight(p + "attn_k.bias", kv_dim, spread=0.5),
                     Weight(p + "attn_v.bias", kv_dim, spread=0.5)]
    return plan


def matrix_type(name: str, qtype: str) -> str:
    if qtype == "Q4_K_M":  # llama-quantize's mix, roughly: more bits where errors hurt most
        return "Q6_K" if name.endswith(("attn_v.weight", "ffn_down.weight", "output.weight")) else "Q4_K"
    return qtype


def our_quantize(values: np.ndarray, kind: str) -> np.ndarray:
    """float32 rows to raw blocks of kind, by our kernels (byte-exact to llama.cpp's reference)."""
    return cpu_kernels.quantize(values, int(GGMLType[kind]))


Quantizer = Callable[[np.ndarray, str], np.ndarray]


def _draw(w: Weight, rng: np.random.Generator) -> np.ndarray:
    """w's float32 values: [rows] for a vector, [rows, cols] for a matrix."""
    if not w.cols:
        return (w.center + w.spread * rng.standard_normal(w.rows)).astype(np.float32)
    values = rng.standard_normal((w.rows, w.cols), dtype=np.float32)
    values *= np.float32(w.scale)
    return values


def _encode(w: Weight, qtype: str, rng: np.random.Generator, quantize: Quantizer):
    """(data, ggml_type or None, shape or None): what GGUFWriter.add_tensor takes for w."""
    values = _draw(w, rng)
    if not w.cols:
        return values, None, None
    kind = matrix_type(w.name, qtype)
    if kind == "F32":
        return values, None, None
    if kind == "F16":
        return values.astype(np.float16), None, None
    return quantize(values, kind), GGMLType[kind], (w.rows, w.cols)


def _write_metadata(w: GGUFWriter, s: Shape, vocab, metadata: dict) -> None:
    arch, hd = s.arch, s.head_dim or s.n_embd // s.n_head
    w.add("general.architecture", arch)
    w.add("general.name", f"random {arch}")
    for key, value in metadata.items():
        w.add(key, value)
    for key, value in {"block_count": s.n_block, "context_length": 4096, "embedding_length": s.n_embd,
                       "feed_forward_length": s.n_ff, "attention.head_count": s.n_head,
                       "attention.head_count_kv": s.n_head_kv, "rope.dimension_count": hd}.items():
        w.add(f"{arch}.{key}", value)
    w.add(f"{arch}.rope.freq_base", 10000.0 if arch == "llama" else 1000000.0)
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
    if arch == "gemma3":
        w.add(f"{arch}.attention.key_length", hd)
        w.add(f"{arch}.attention.value_length", hd)
        if s.window:
            w.add(f"{arch}.attention.sliding_window", s.window)
        if isinstance(s.swa_pattern, (list, tuple)):  # an array of BOOL, one flag per block (true: local)
            w.add(f"{arch}.attention.sliding_window_pattern", [bool(f) for f in s.swa_pattern])
        elif s.swa_pattern is not None:  # a period, read by llama.cpp as UINT32 only
            w.add(f"{arch}.attention.sliding_window_pattern", s.swa_pattern, GGUFValueType.UINT32)
        if s.rope_base_swa is not None:
            w.add(f"{arch}.rope.freq_base_swa", s.rope_base_swa)
        if s.final_softcap:
            w.add(f"{arch}.final_logit_softcapping", s.final_softcap)
    w.add_metadata_from(vocab, skip=tuple(k for k in vocab.metadata if not k.startswith("tokenizer.")))


def write_random_model(path: str | os.PathLike, vocab_file: str | os.PathLike, shape: Shape, qtype: str = "Q8_0",
                       seed: int = 0, threads: int = 1, quantize: Quantizer = our_quantize,
                       metadata: dict | None = None) -> None:
    """Writes a random model of shape to path: matrices in qtype (F32, F16, a block type, or Q4_K_M:
    Q4_K with Q6_K for attn_v, ffn_down and output), vectors in F32, the tokenizer of vocab_file.
    quantize(values, kind) makes the raw blocks; metadata: extra keys (general.file_type, say)."""
    with gguf.open(vocab_file) as vocab, GGUFWriter(path) as w:
        _write_metadata(w, shape, vocab, metadata or {})
        plan = tensor_plan(shape, len(vocab.metadata["tokenizer.ggml.tokens"]))
        if threads <= 1:
            rng = np.random.default_rng(seed)
            encoded = (_encode(t, qtype, rng, quantize) for t in plan)  # drawn in file order
        else:
            with ThreadPoolExecutor(threads) as pool:
                encoded = list(pool.map(lambda it: _encode(it[1], qtype, np.random.default_rng((seed, it[0])),
                                                           quantize), enumerate(plan)))
        for t, (data, ggml_type, shape_) in zip(plan, encoded):
            w.add_tensor(t.name, data, ggml_type, shape=shape_)


TEMPLATE_KEY = "gpt4all_core.template.tensors"


def write_template(model_file: str | os.PathLike, path: str | os.PathLike) -> None:
    """A tensor-free GGUF holding model_file's metadata (tokenizer included) and, under
    TEMPLATE_KEY, one "name type dims..." line per tensor: a few MB that stand for the model where
    the model itself cannot travel (the GPU machine), for write_random_like."""
    with gguf.open(model_file) as src, GGUFWriter(path) as w:
        w.add_metadata_from(src)
        w.add(TEMPLATE_KEY, [" ".join([name, t.type.name, *map(str, t.shape)]) for name, t in src.tensors.items()])


def _template_weight(name: str, shape: tuple[int, ...]) -> Weight:
    if len(shape) == 1:  # norms centred on 1, biases around 0
        return Weight(name, shape[0], center=1.0 if "norm" in name else 0.0, spread=0.1 if "norm" in name else 0.5)
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    return Weight(name, rows, cols, 1.0 if name == "token_embd.weight" else cols ** -0.5)


def write_random_like(template_file: str | os.PathLike, path: str | os.PathLike, seed: int = 0, threads: int = 1,
                      quantize: Quantizer = our_quantize) -> None:
    """Writes a model with the metadata, tensor names, shapes and types of a write_template file
    and random values: the same work for every kernel as the real model, none of its weights."""
    with gguf.open(template_file) as tpl:
        lines = tpl.metadata.get(TEMPLATE_KEY)
        if not lines:
            raise GGUFError("not a template (write_template makes them)", path=os.fspath(template_file),
                            field=TEMPLATE_KEY)
        plan = []
        for line in lines:
            name, kind, *dims = line.split()
            shape = tuple(int(d) for d in dims)
            plan.append((_template_weight(name, shape), kind, shape))

        def encode(i: int):
            w, kind, shape = plan[i]
            values = _draw(w, np.random.default_rng((seed, i)))
            if kind in ("F32", "F16", "BF16") or not w.cols:
                return values.reshape(shape), GGMLType[kind], None  # the writer rounds float32 to F16 or BF16
            return quantize(values, kind), GGMLType[kind], shape

        with GGUFWriter(path) as w:
            w.add_metadata_from(tpl, skip=(TEMPLATE_KEY,))
            with ThreadPoolExecutor(max(1, threads)) as pool:
                encoded = list(pool.map(encode, range(len(plan))))
            for (weight, _, _), (data, ggml_type, shape_) in zip(plan, encoded):
                w.add_tensor(weight.name, data, ggml_type, shape=shape_)


__all__ = ["FILE_TYPES", "LLAMA_1B", "LLAMA_7B", "Shape", "Weight", "matrix_type", "our_quantize", "tensor_plan",
           "write_random_like", "write_random_model", "write_template"]
