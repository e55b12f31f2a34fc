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
from gpt4all_core.bench.random_model import Shape, our_quantize, write_random_model
from gpt4all_core.gguf import GGMLType, GGUFWriter

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


def _test_quantize(values: np.ndarray, kind: str) -> np.ndarray:
    """Small matrices through the gguf package's quantizer (an independent implementation of the
    block formats); big ones (benchmark models) and K-quants through ours, byte-exact to llama.cpp
    and fast."""
    if values.size > 1 << 22 or kind.endswith("_K"):
        return our_quantize(values, kind)
    return gguf_py.quants.quantize(values, gguf_py.GGMLQuantizationType[kind])


def random_model(arch: str, n_block: int = 2, n_embd: int = 128, n_head: int = 4, n_head_kv: int = 2,
                 n_ff: int = 256, qtype: str = "Q8_0", seed: int = 0, tied: bool = False,
                 head_dim: int | None = None, window: int = 0, swa_pattern: int | list[bool] | None = None,
                 rope_base_swa: float | None = None, final_softcap: float = 0.0) -> Path:
    """A small model of random weights in arch's layout (gpt4all_core.bench.random_model, whose
    Shape documents the Gemma 3 parameters), cached under a name that spells its parameters."""
    donor = need(TEST_DATA / "llama.cpp-models" / VOCAB_DONORS[arch])
    extra = ""
    if arch == "gemma3":
        pattern = "-".join(str(int(v)) for v in swa_pattern) if isinstance(swa_pattern, list) else swa_pattern
        extra = f"-hd{head_dim}-w{window}-p{pattern}-b{rope_base_swa}-c{final_softcap}"
    name = (f"random-{arch}-{n_block}x{n_embd}-ff{n_ff}-h{n_head}kv{n_head_kv}-{qtype}-s{seed}"
            f"{'-tied' if tied else ''}{extra}.gguf")
    shape = Shape(arch, n_block, n_embd, n_head, n_head_kv, n_ff, tied, head_dim, window, swa_pattern,
                  rope_base_swa, final_softcap)
    return _atomic(DERIVED / name,
                   lambda path: write_random_model(path, donor, shape, qtype, seed, quantize=_test_quantize))


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
