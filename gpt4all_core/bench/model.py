"""Model tokens/s in the spirit of llama.cpp's llama-bench: a prompt-processing test `pp<P>` (P random
tokens in batches of n_batch into an empty KV cache) and a generation test `tg<N>` (N tokens one at a
time from an empty cache), each repeated after a warm-up, reported as the mean and standard deviation
of the repetitions' tokens/s, with llama-bench's field names. Measured in this process over the C
decoder (`model.decoder.forward`), the Python loop around it included."""
from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from gpt4all_core.bench.devices import BenchError, describe

# general.file_type as llama.cpp names it (llama_model_ftype_name), so model_type lines up with llama-bench's
FILE_TYPE_NAMES = {
    0: "all F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K - Medium",
    11: "Q3_K - Small", 12: "Q3_K - Medium", 13: "Q3_K - Large", 14: "Q4_K - Small", 15: "Q4_K - Medium",
    16: "Q5_K - Small", 17: "Q5_K - Medium", 18: "Q6_K", 19: "IQ2_XXS - 2.0625 bpw", 20: "IQ2_XS - 2.3125 bpw",
    21: "Q2_K - Small", 22: "IQ3_XS - 3.3 bpw", 23: "IQ3_XXS - 3.0625 bpw", 24: "IQ1_S - 1.5625 bpw",
    25: "IQ4_NL - 4.5 bpw", 26: "IQ3_S - 3.4375 bpw", 27: "IQ3_S mix - 3.66 bpw", 28: "IQ2_S - 2.5 bpw",
    29: "IQ2_M - 2.7 bpw", 30: "IQ4_XS - 4.25 bpw", 31: "IQ1_M - 1.75 bpw", 32: "BF16",
    36: "TQ1_0 - 1.69 bpw ternary", 37: "TQ2_0 - 2.06 bpw ternary", 38: "MXFP4 MoE",
}


def params_label(n: int) -> str:
    """135M, 1.1B: the parameter count as a size label."""
    if n >= 1e9:
        return f"{n / 1e9:.1f}B".replace(".0B", "B")
    if n >= 1e6:
        return f"{n / 1e6:.0f}M"
    return f"{n / 1e3:.0f}K"


def model_facts(gf) -> dict:
    """What a row says about the file: llama-bench's model_type / model_size (tensor bytes) /
    model_n_params, the dominant tensor type by bytes (quant_type) and general.file_type's name."""
    params = sum(t.n_elements for t in gf.tensors.values())
    size = sum(t.nbytes for t in gf.tensors.values())
    by_bytes = Counter()
    for t in gf.tensors.values():
        if len(t.shape) >= 2:  # matrices: norms and biases are F32 in every file
            by_bytes[t.type.name] += t.nbytes
    quant = by_bytes.most_common(1)[0][0] if by_bytes else "?"
    ftype = gf.get("general.file_type")
    ftype_name = FILE_TYPE_NAMES.get(int(ftype), f"file_type {ftype}") if ftype is not None else f"{quant} (guessed)"
    arch = gf.get("general.architecture") or "?"
    return {"model_type": f"{arch} {params_label(params)} {ftype_name}", "model_size": int(size),
            "model_n_params": int(params), "quant_type": quant, "file_type": ftype_name}


def _stats(seconds: list[float], n_tokens: int) -> dict:
    ts = [n_tokens / s for s in seconds]
    ns = [int(s * 1e9) for s in seconds]
    return {"avg_ns": int(statistics.mean(ns)), "stddev_ns": int(statistics.stdev(ns)) if len(ns) > 1 else 0,
            "avg_ts": statistics.mean(ts), "stddev_ts": statistics.stdev(ts) if len(ts) > 1 else 0.0,
            "samples_ns": ns, "samples_ts": [round(v, 3) for v in ts]}


def _prompt(decoder, cache, tokens: np.ndarray, n_batch: int, threads: int) -> None:
    cache.clear()
    for s in range(0, len(tokens), n_batch):
        e = min(len(tokens), s + n_batch)
        pos = np.arange(s, e, dtype=np.int32)
        decoder.forward(cache, tokens[s:e], pos, pos, e, 1, threads)


def _generate(decoder, cache, tokens: np.ndarray, threads: int) -> None:
    cache.clear()
    for i in range(len(tokens)):
        pos = np.array([i], np.int32)
        decoder.forward(cache, tokens[i:i + 1], pos, pos, i + 1, 1, threads)


def bench_model(path: str | os.PathLike, device: str, threads: list[int], n_prompt: int, n_gen: int,
                repeats: int, n_batch: int = 512, n_gpu_layers: int = 0,
                progress: Callable[[str], None] | None = None) -> list[dict]:
    """Rows (one per thread count and test) for one model file on one device."""
    from gpt4all_core import models
    from gpt4all_core.bench.machine import commit, cpu_name

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    on_gpu = device != "cpu"
    model = models.load(path, device=device if on_gpu else None, ngl=n_gpu_layers if on_gpu else 0)
    try:
        decoder = getattr(model, "decoder", None)
        if decoder is None:
            raise BenchError(f"{path}: a {model.architecture} model has no decoder to benchmark (embedding models "
                             "are measured by benchmarks/embed.py)")
        facts = model_facts(model.gguf)
        rng = np.random.default_rng(0)
        pp_tokens = rng.integers(0, model.n_vocab, n_prompt).astype(np.int32)
        tg_tokens = rng.integers(0, model.n_vocab, n_gen).astype(np.int32)
        cache = model.new_cache(max(n_prompt, n_gen, 1))
        base = {"build_commit": commit(), "cpu_info": cpu_name(), **describe(device),
                "model_filename": str(path), **facts, "n_batch": n_batch, "n_threads": 0,
                "n_gpu_layers": 0 if device == "cpu" else n_gpu_layers, "type_k": "f16", "type_v": "f16"}
        rows = []
        for t in threads:
            tests = []
            if n_prompt:
                tests.append((f"pp{n_prompt}", n_prompt, 0, lambda: _prompt(decoder, cache, pp_tokens, n_batch, t)))
            if n_gen:
                tests.append((f"tg{n_gen}", 0, n_gen, lambda: _generate(decoder, cache, tg_tokens, t)))
            for name, np_, ng, fn in tests:
                fn()  # warm-up: pages of the mmap, caches, the thread pool
                seconds = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    fn()
                    seconds.append(time.perf_counter() - t0)
                row = {**base, "n_threads": t, "n_prompt": np_, "n_gen": ng, "test": name,
                       "test_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       **_stats(seconds, np_ or ng)}
                rows.append(row)
                if progress:
                    progress(f"{path.name} {device} {t}t {name}: {row['avg_ts']:.2f} ± {row['stddev_ts']:.2f} t/s")
        return rows
    finally:
        model.close()


def run_models(paths: list[str], devices: list[str], threads: list[int], n_prompt: int, n_gen: int,
               repeats: int, n_batch: int = 512, n_gpu_layers: int = 0,
               progress: Callable[[str], None] | None = None) -> list[dict]:
    """Rows for every model x device x thread count x test. Missing files fail before anything runs."""
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"model file not found: {p}")
    rows = []
    for p in paths:
        for d in devices:
            rows += bench_model(p, d, threads, n_prompt, n_gen, repeats, n_batch, n_gpu_layers, progress)
    return rows
