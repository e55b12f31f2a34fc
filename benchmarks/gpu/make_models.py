"""Random-weight llama files for the GPU benchmarks, written fast on many cores: ~1.1B parameters
(TinyLlama's shape) and ~6.7B (Llama-2-7B's), in Q4_0, Q8_0 and Q4_K_M (Q4_K, with Q6_K for
attn_v, ffn_down and output), with llama's 32000-token SentencePiece vocabulary copied from
llama.cpp's ggml-vocab-llama-spm.gguf, so that llama-bench and gpt4all-core both load them. A model that cannot travel (SmolLM2, 98 MB, over
the device tool's carry limit) travels as a template (gpt4all_core.bench.random_model.write_template:
its metadata and tokenizer, each tensor's name, type and shape): `like:TEMPLATE` writes a file of
the same tensors, types and shapes with random values, the same work for every kernel.

    python benchmarks/gpu/make_models.py [--out DIR] [--threads N] [--vocab FILE] 1.1b-q4_0 6.7b-q4_0 like:T.gguf ...
    python benchmarks/gpu/make_models.py --template MODEL.gguf OUT.template.gguf

Each tensor is drawn and quantized on its own thread, directly from float32 (no F16 file first).
A file already in --out is kept. Prints one line per file: name, size, parameters, seconds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from gpt4all_core.bench.random_model import (FILE_TYPES, LLAMA_1B, LLAMA_7B, tensor_plan, write_random_like,
                                             write_random_model, write_template)

ROOT = Path(__file__).resolve().parents[2]
VOCAB = "ggml-vocab-llama-spm.gguf"
SIZES = {"1.1b": LLAMA_1B, "6.7b": LLAMA_7B}
QTYPES = ("Q4_0", "Q8_0", "Q4_K_M")
MODELS = {f"{size}-{q.lower()}": (size, q) for size in SIZES for q in QTYPES}


def default_vocab() -> Path | None:
    """The carried copy (setup.sh's carry folder), else the test fixtures' one."""
    carry = Path(os.environ.get("GPU_CARRY", ROOT / ".gpu"))
    cache = Path(os.environ.get("GPT4ALL_CORE_CACHE", Path.home() / ".cache" / "gpt4all-core"))
    test_data = Path(os.environ.get("GPT4ALL_CORE_TEST_DATA", cache / "testdata"))
    for path in (carry / "src" / VOCAB, test_data / "llama.cpp-models" / VOCAB):
        if path.is_file():
            return path
    return None


def file_name(key: str) -> str:
    size, qtype = MODELS[key]
    return f"random-llama-{size}-{qtype}.gguf"


def make_like(template: Path, out: Path, threads: int) -> Path:
    path = out / ("random-" + template.name.replace(".template.gguf", ".gguf"))
    started = time.perf_counter()
    kept = path.exists()
    if not kept:
        partial = path.with_suffix(".partial")
        write_random_like(template, partial, seed=0, threads=threads)
        partial.rename(path)
    print(f"{path.name:34s} {path.stat().st_size / 1e9:6.2f} GB (like {template.name}) "
          f"{'kept' if kept else f'{time.perf_counter() - started:6.1f} s'}", flush=True)
    return path


def make(key: str, out: Path, vocab: Path, threads: int) -> Path:
    size, qtype = MODELS[key]
    path = out / file_name(key)
    n_params = sum(t.rows * max(t.cols, 1) for t in tensor_plan(SIZES[size], 32000))
    started = time.perf_counter()
    kept = path.exists()
    if not kept:
        partial = path.with_suffix(".partial")  # renamed when complete: a reader may wait for path
        write_random_model(partial, vocab, SIZES[size], qtype, seed=0, threads=threads,
                           metadata={"general.file_type": FILE_TYPES[qtype]})
        partial.rename(path)
    seconds = time.perf_counter() - started
    print(f"{path.name:34s} {path.stat().st_size / 1e9:6.2f} GB {n_params / 1e9:5.2f}B params "
          f"{'kept' if kept else f'{seconds:6.1f} s'}", flush=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", metavar="MODEL", help="any of: " + ", ".join(MODELS) + ", like:TEMPLATE")
    ap.add_argument("--out", type=Path, default=Path("/tmp/models"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--vocab", type=Path, default=default_vocab(), help=f"a GGUF holding llama's tokenizer ({VOCAB})")
    ap.add_argument("--template", nargs=2, type=Path, metavar=("MODEL", "OUT"),
                    help="write MODEL's template to OUT (then nothing else)")
    args = ap.parse_args()
    if args.template:
        write_template(*args.template)
        print(f"{args.template[1]}: {args.template[1].stat().st_size / 1e6:.1f} MB")
        return
    unknown = [m for m in args.models if m not in MODELS and not m.startswith("like:")]
    if unknown or not args.models:
        ap.error(f"unknown model {unknown[0]!r}" if unknown else "no model named")
    if any(m in MODELS for m in args.models) and (args.vocab is None or not args.vocab.is_file()):
        sys.exit(f"make_models: no vocab file ({VOCAB}); pass --vocab")
    args.out.mkdir(parents=True, exist_ok=True)
    for key in args.models:
        if key.startswith("like:"):
            make_like(Path(key[5:]), args.out, args.threads)
        else:
            make(key, args.out, args.vocab, args.threads)


if __name__ == "__main__":
    main()
