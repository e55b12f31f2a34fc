"""Sampler speed: microseconds per ``Sampler.sample`` call, for a few vocabularies and settings.

    python benchmarks/sampling.py [-n 2000] [-r 5]

Logits are random normal with scale 3 (peaked like a model's), the history 64 random tokens, so the
repeat penalty always has work. Each row: the median over r runs of the mean over n calls, Python
wrapper included.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from gpt4all_core.engine.sampling import Sampler, SamplingParams

VOCABS = {"SmolLM2 49k": 49_152, "Qwen2 152k": 151_936, "Gemma 3 262k": 262_144}
SETTINGS = {
    "GPT4All defaults (k=40, p=0.4)": SamplingParams(),
    "greedy (temp=0)": SamplingParams(temp=0.0),
    "k=1": SamplingParams(top_k=1),
    "k=0, p=0.95": SamplingParams(top_k=0, top_p=0.95),
    "k=0, p=1, min_p=0.05": SamplingParams(top_k=0, top_p=1.0, min_p=0.05),
    "k=0, p=1 (full softmax)": SamplingParams(top_k=0, top_p=1.0),
}


def per_call_us(sampler: Sampler, logits: np.ndarray, history: np.ndarray, calls: int, repeats: int) -> float:
    sampler.sample(logits, history)   # warm the scratch buffers
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            sampler.sample(logits, history)
        runs.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--calls", type=int, default=2000)
    ap.add_argument("-r", "--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'setting':32s}" + "".join(f"{name:>16s}" for name in VOCABS) + "   (µs per sample)")
    for label, params in SETTINGS.items():
        row = []
        for n_vocab in VOCABS.values():
            logits = (rng.standard_normal(n_vocab) * 3).astype(np.float32)
            history = rng.integers(0, n_vocab, 64)
            calls = max(args.calls // (20 if params.top_k == 0 else 1), 20)
            row.append(per_call_us(Sampler(params, seed=0), logits, history, calls, args.repeats))
        print(f"{label:32s}" + "".join(f"{us:16.1f}" for us in row))


if __name__ == "__main__":
    main()
