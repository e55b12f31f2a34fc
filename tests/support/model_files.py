"""Model files the model tests derive, cached under TEST_DATA/derived (made once, then reused):

- SmolLM2 requantized to F16, Q8_0 and Q4_0 with the `gguf` package's quantizer (an independent
  implementation of the block formats: llama.cpp's Python one);
- small random-weight llama, Qwen2 and Gemma 3-shaped files written by our GGUFWriter, with a real
  tokenizer copied from one of llama.cpp's vocab files so llama.cpp loads them too.
"""
from __future__ import annotations

from pathlib import Path

import gguf as gguf_py  # the reference quantizer (test-only)
import numpy as np
from fixture_paths import MODEL_DIR, TEST_DATA, need

from gpt4all_core import gguf
from gpt4all_core.backend import cpu_kernels
from gpt4all_core.gguf import GGMLType, GGUFValueType, GGUFWriter

DERIVED = TEST_DATA / "derived"
SMOLLM2 = MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf"
FILE_TYPES = {"F16": 1, "Q8_0": 7, "Q4_0": 2}  # llama.cpp's general.file_type values


def _atomic(path: Path, write) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    return path


def requantized_smollm2(qtype: str) -> Path:
    """SmolLM2 with every 2-D weight dequantized and requantized to qtype by the gguf package."""
    src = need(SMOLLM2)
    dst = DERIVED / f"SmolLM2-135M-Instruct.{qtype}.gguf"

    def write(path: Path) -> None:
        target = gguf_py.GGMLQuantizationType[qtype]
        with gguf.open(src) as f, GGUFWriter(path) as w:
            w.add_metadata_from(f, skip=("general.file_type",))
            w.add("general.file_type", FILE_TYPES[qtype])
            for name, t in f.tensors.items():
                if len(t.shape) < 2:
                    w.add_tensor(name, t.data)
                    continue
                values = gguf_py.quants.dequantize(t.data, gguf_py.GGMLQuantizationType(int(t.type)))
                values = values.reshape(t.shape).astype(np.float32)
                if qtype == "F16":
                    w.add_tensor(name, values.astype(np.float16))
                else:
                    w.add_tensor(name, gguf_py.quants.quantize(values, target), GGMLType[qtype], shape=t.shape)

    return _atomic(dst, write)


# Vocabulary donors: llama-spm (32000 SentencePiece tokens) for llama and Gemma 3 (whose own
# 262k-token vocabulary would dwarf a small model), qwen2's BPE for Qwen2.
VOCAB_DONORS = {"llama": "ggml-vocab-llama-spm.gguf", "qwen2": "ggml-vocab-qwen2.gguf",
                "gemma3": "ggml-vocab-llama-spm.gguf"}


def random_model(arch: str, n_block: int = 2, n_embd: int = 128, n_head: int = 4, n_head_kv: int = 2,
                 n_ff: int = 256, qtype: str = "Q8_0", seed: int = 0, tied: bool = False,
                 head_dim: int | None = None, window: int = 0, swa_pattern: int | list[bool] | None = None,
                 rope_base_swa: float | None = None, final_softcap: float = 0.0) -> Path:
    """A small model of random weights (scaled so activations stay O(1)) in arch's layout.

    Gemma 3 only: head_dim (attention.key_length; n_embd / n_head when None), window
    (attention.sliding_window, 0: none), swa_pattern (attention.sliding_window_pattern: a period or
    one flag per block; None: no key), rope_base_swa (rope.freq_base_swa; None: no key) and
    final_softcap (final_logit_softcapping; 0: no key). Its norm weights are stored as llama.cpp's
    converter stores them, already (1 + w), and centred on 1 like the others.
    """
    donor = need(TEST_DATA / "llama.cpp-models" / VOCAB_DONORS[arch])
    gemma = arch == "gemma3"
    extra = ""
    if gemma:
        pattern = "-".join(str(int(v)) for v in swa_pattern) if isinstance(swa_pattern, list) else swa_pattern
        extra = f"-hd{head_dim}-w{window}-p{pattern}-b{rope_base_swa}-c{final_softcap}"
    name = (f"random-{arch}-{n_block}x{n_embd}-ff{n_ff}-h{n_head}kv{n_head_kv}-{qtype}-s{seed}"
            f"{'-tied' if tied else ''}{extra}.gguf")

    def write(path: Path) -> None:
        rng = np.random.default_rng(seed)
        hd = head_dim or n_embd // n_head
        with gguf.open(donor) as v, GGUFWriter(path) as w:
            n_vocab = len(v.metadata["tokenizer.ggml.tokens"])
            w.add("general.architecture", arch)
            w.add("general.name", f"random {arch}")
            for key, value in {"block_count": n_block, "context_length": 4096, "embedding_length": n_embd,
                               "feed_forward_length": n_ff, "attention.head_count": n_head,
                               "attention.head_count_kv": n_head_kv, "rope.dimension_count": hd}.items():
                w.add(f"{arch}.{key}", value)
            w.add(f"{arch}.rope.freq_base", 10000.0 if arch == "llama" else 1000000.0)
            w.add(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
            if gemma:
                w.add(f"{arch}.attention.key_length", hd)
                w.add(f"{arch}.attention.value_length", hd)
                if window:
                    w.add(f"{arch}.attention.sliding_window", window)
                if isinstance(swa_pattern, list):  # an array of BOOL, one flag per block (true: local)
                    w.add(f"{arch}.attention.sliding_window_pattern", [bool(f) for f in swa_pattern])
                elif swa_pattern is not None:  # a period, read by llama.cpp as UINT32 only
                    w.add(f"{arch}.attention.sliding_window_pattern", swa_pattern, GGUFValueType.UINT32)
                if rope_base_swa is not None:
                    w.add(f"{arch}.rope.freq_base_swa", rope_base_swa)
                if final_softcap:
                    w.add(f"{arch}.final_logit_softcapping", final_softcap)
            w.add_metadata_from(v, skip=tuple(k for k in v.metadata if not k.startswith("tokenizer.")))

            def matrix(name: str, rows: int, cols: int, scale: float) -> None:
                values = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(scale)
                kind = qtype
                if qtype == "Q4_K_M":  # llama-quantize's mix, roughly: more bits where errors hurt most
                    kind = "Q6_K" if name.endswith(("attn_v.weight", "ffn_down.weight", "output.weight")) else "Q4_K"
                if kind == "F16":
                    w.add_tensor(name, values.astype(np.float16))
                elif kind == "F32":
                    w.add_tensor(name, values)
                elif values.size > 1 << 22 or kind.endswith("_K"):
                    # big matrices (benchmark models): our quantizer, byte-exact to llama.cpp and fast
                    w.add_tensor(name, cpu_kernels.quantize(values, int(GGMLType[kind])), GGMLType[kind],
                                 shape=(rows, cols))
                else:
                    w.add_tensor(name, gguf_py.quants.quantize(values, gguf_py.GGMLQuantizationType[kind]),
                                 GGMLType[kind], shape=(rows, cols))

            def vector(name: str, n: int, center: float, spread: float) -> None:
                w.add_tensor(name, (center + spread * rng.standard_normal(n)).astype(np.float32))

            # Gemma scales the embeddings by sqrt(n_embd): rows of norm ~3 keep them O(1), and tied
            # logits of a few units
            matrix("token_embd.weight", n_vocab, n_embd, 3 * n_embd ** -0.5 if gemma else 1.0)
            vector("output_norm.weight", n_embd, 1.0, 0.1)
            if not tied:
                matrix("output.weight", n_vocab, n_embd, n_embd ** -0.5)
            q_dim, kv_dim = n_head * hd, n_head_kv * hd
            for i in range(n_block):
                p = f"blk.{i}."
                vector(p + "attn_norm.weight", n_embd, 1.0, 0.1)
                vector(p + "ffn_norm.weight", n_embd, 1.0, 0.1)
                if gemma:
                    vector(p + "attn_q_norm.weight", hd, 1.0, 0.1)
                    vector(p + "attn_k_norm.weight", hd, 1.0, 0.1)
                    vector(p + "post_attention_norm.weight", n_embd, 1.0, 0.1)
                    vector(p + "post_ffw_norm.weight", n_embd, 1.0, 0.1)
                matrix(p + "attn_q.weight", q_dim, n_embd, n_embd ** -0.5)
                matrix(p + "attn_k.weight", kv_dim, n_embd, n_embd ** -0.5)
                matrix(p + "attn_v.weight", kv_dim, n_embd, n_embd ** -0.5)
                matrix(p + "attn_output.weight", n_embd, q_dim, q_dim ** -0.5)
                matrix(p + "ffn_gate.weight", n_ff, n_embd, n_embd ** -0.5)
                matrix(p + "ffn_up.weight", n_ff, n_embd, n_embd ** -0.5)
                matrix(p + "ffn_down.weight", n_embd, n_ff, n_ff ** -0.5)
                if arch == "qwen2":
                    vector(p + "attn_q.bias", q_dim, 0.0, 0.5)
                    vector(p + "attn_k.bias", kv_dim, 0.0, 0.5)
                    vector(p + "attn_v.bias", kv_dim, 0.0, 0.5)

    return _atomic(DERIVED / name, write)


__all__ = ["DERIVED", "SMOLLM2", "dequantized", "random_model", "requantized_smollm2"]


def dequantized(src: Path) -> Path:
    """src with every weight dequantized to F32 (by our kernels; bit-exact to the gguf package's, as
    tests/backend checks): the same model without weight rounding, so that products with it are
    exact up to float32 accumulation, the reference for activation-quantization noise."""
    dst = DERIVED / (Path(src).stem + ".as-F32.gguf")

    def write(path: Path) -> None:
        with gguf.open(src) as f, GGUFWriter(path) as w:
            w.add_metadata_from(f, skip=("general.file_type",))
            w.add("general.file_type", 0)
            for name, t in f.tensors.items():
                raw = t.data.reshape(t.shape[0], -1).view(np.uint8) if len(t.shape) >= 2 else None
                w.add_tensor(name, t.data if raw is None else
                             cpu_kernels.dequantize(raw, int(t.type)).reshape(t.shape))

    return _atomic(dst, write)


def write_variant(tmp_path, src, drop=(), metadata=None, remove=(), replace=None):
    """A copy of src without the tensors in drop, with metadata replaced or removed, and tensors
    replaced by the arrays in replace (name -> array)."""
    out = tmp_path / "variant.gguf"
    metadata, replace = metadata or {}, replace or {}
    with gguf.open(src) as f, GGUFWriter(out) as w:
        w.add_metadata_from(f, skip=tuple(metadata) + tuple(remove))
        for key, value in metadata.items():
            w.add(key, *value) if isinstance(value, tuple) else w.add(key, value)
        for name, t in f.tensors.items():
            if name in replace:
                w.add_tensor(name, replace[name])
            elif name not in drop:
                w.add_tensor(name, t.data, t.type, shape=t.shape)
    return out


def logits_of_file_and_variant(src, variant, text: str, n: int = 64):
    """Our logits at each of the first n positions of text's tokens, for src and for a variant of it
    (write_variant): (src's, the variant's, the tokens)."""
    from gpt4all_core import models
    pos = np.arange(n)
    results = []
    for p in (src, variant):
        with models.load(p) as model:
            tokens = model.tokenizer.encode(text, add_special=True)[:n]
            results.append(model.decoder.forward(model.new_cache(n), np.array(tokens), pos, pos, n, n_logits=n))
    return results[0], results[1], tokens
