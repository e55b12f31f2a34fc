"""Tokenizer speed: MB/s encoding a large mixed text, gpt4all-core against llama.cpp's tokenizer
(llama-cpp-python, vocab only), side by side in one run, on the same text and settings.

    python benchmarks/tokenize.py [--mb 2] [-r 5] [--save] [--only SUBSTRING]

Both tokenize the whole text in one call, without special-token parsing, and must give the same
tokens (checked). The text alternates a paragraph of English prose, code, numbers, CJK, emoji and
whitespace runs with seeded random lines (made-up words, numbers, CJK, emoji), so that about half of
its words are new. Our BPE and WordPiece encoders remember the ids of words they have seen; every
timed run starts with that memory emptied, so the figures are those of a first encounter.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import time
from pathlib import Path

import llama_cpp

from gpt4all_core import gguf
from gpt4all_core.tokenizer import Tokenizer

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("GPT4ALL_CORE_TEST_DATA", Path.home() / ".cache/gpt4all-core/testdata"))
MODELS = Path(os.environ.get("GPT4ALL_MODEL_DIR", Path.home() / ".cache/gpt4all"))
VOCABS = {"gemma-3 (SPM)": DATA / "gemma-3-270m-q4_k_m.gguf",
          "llama-spm (SPM)": DATA / "llama.cpp-models/ggml-vocab-llama-spm.gguf",
          "phi-3 (SPM)": DATA / "llama.cpp-models/ggml-vocab-phi-3.gguf",
          "SmolLM2 (BPE)": MODELS / "SmolLM2-135M-Instruct.Q4_1.gguf",
          "llama-bpe (BPE)": DATA / "llama.cpp-models/ggml-vocab-llama-bpe.gguf",
          "qwen2 (BPE)": DATA / "llama.cpp-models/ggml-vocab-qwen2.gguf",
          "bert-bge (WPM)": DATA / "llama.cpp-models/ggml-vocab-bert-bge.gguf"}
SAMPLE = ("The quick brown fox jumps over the lazy dog. It was 3.14159 degrees at 12:45, and 1,024 people "
          "said “hello”.\n    def f(x):\n        return {'a': x ** 2, \"b\": [1, 2, 3]}  # comment\n"
          "日本語のテキストと中文文本，还有한국어. Émoji: 🦙🔥👍🏽 — done!\t\t  spaces   and\n\n\nnewlines ")


def noise_line(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                        for _ in range(8))
    if kind < 0.6:
        return " ".join(str(rng.randint(0, 10 ** rng.randint(1, 7))) for _ in range(6))
    if kind < 0.8:
        return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(4, 12)))
    return "".join(chr(rng.randint(0x1F300, 0x1F64F)) for _ in range(3))


def bench_text(mb: float) -> str:
    rng = random.Random(0)
    parts, size = [], 0
    while size < mb * 1e6:
        part = SAMPLE if rng.random() < 0.5 else noise_line(rng) + "\n"
        parts.append(part)
        size += len(part.encode())
    return "".join(parts)


def timed(fn, repeats: int, before=lambda: None) -> float:
    before()
    fn()
    runs = []
    for _ in range(repeats):
        before()
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=2.0, help="size of the text in MB")
    ap.add_argument("-r", "--repeats", type=int, default=5)
    ap.add_argument("--save", action="store_true")
    ap.add_argument("--only", default="", help="only the vocabularies whose name contains this")
    args = ap.parse_args()
    text = bench_text(args.mb)
    nbytes = len(text.encode())
    rows = []
    for name, path in VOCABS.items():
        if args.only not in name:
            continue
        with gguf.open(path) as f:
            ours = Tokenizer.from_gguf(f)
        llama = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        raw = text.encode()
        ids = ours.encode(text, add_special=False)
        assert ids == llama.tokenize(raw, add_bos=False, special=False), f"{name}: different tokens"
        t_ours = timed(lambda: ours.encode(text, add_special=False), args.repeats, before=ours.clear_cache)
        t_llama = timed(lambda: llama.tokenize(raw, add_bos=False, special=False), args.repeats)
        rows.append({"vocab": name, "text_bytes": nbytes, "tokens": len(ids),
                     "gpt4all_core_MB_per_s": nbytes / t_ours / 1e6, "llama_cpp_MB_per_s": nbytes / t_llama / 1e6,
                     "ratio": t_llama / t_ours})
        r = rows[-1]
        print(f"{name:18s} {len(ids):8d} tokens  ours {r['gpt4all_core_MB_per_s']:6.2f} MB/s  "
              f"llama.cpp {r['llama_cpp_MB_per_s']:6.2f} MB/s  ratio {r['ratio']:.2f}", flush=True)
    if args.save:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        out = HERE / "results" / f"tokenize-{commit}.json"
        out.write_text(json.dumps({"benchmark": "tokenize", "machine": {"cpu": cpu, "python": platform.python_version(),
                                   "llama_cpp_python": llama_cpp.__version__, "commit": commit,
                                   "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")},
                                   "repeats": args.repeats, "rows": rows}, indent=2) + "\n")
        print(f"saved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
