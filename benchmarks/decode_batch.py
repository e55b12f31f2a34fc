"""A batched decode step on the CPU decoder, alone: B sequences of one cache, each with `--history`
tokens already in it, decode one token each per step (kv_ranges keep them apart), for `--seconds`;
prints the step time and tokens/s per batch size. What the server's continuous batching runs at
each step, without HTTP, sampling or scheduling.

    .venv/bin/python benchmarks/decode_batch.py [MODEL] [-b 1,8] [--history 100] [--seconds 4 | --steps N] [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_MODEL = Path.home() / ".cache" / "gpt4all" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def step_time(model, batch: int, history: int, seconds: float, n_threads: int, steps: int = 0) -> float:
    """Seconds a decode step of `batch` tokens takes (mean over `seconds` of steps, or over `steps`
    steps when given: a fixed amount of work, for cycle counts)."""
    dec, room = model.decoder, 2 * history + 8  # slots a sequence owns
    cache = model.new_cache(batch * room)
    past = np.arange(100, 100 + history, dtype=np.int32)
    for s in range(batch):  # each sequence's history, in its own slots
        pos = np.arange(history, dtype=np.int32)
        ranges = np.tile([s * room, s * room + history], (history, 1)).astype(np.int32)
        dec.forward(cache, past, pos, pos + s * room, cache.n_ctx, 1, n_threads, kv_ranges=ranges)
    t0, n = time.perf_counter(), 0
    while (n < steps) if steps else (time.perf_counter() - t0 < seconds):
        p = history + n % history  # positions run on, up to twice the history, and wrap
        pos = np.full(batch, p, np.int32)
        first = np.arange(batch, dtype=np.int32) * room
        ranges = np.stack([first, first + p + 1], 1).astype(np.int32)
        dec.forward(cache, np.full(batch, 300, np.int32), pos, pos + first, cache.n_ctx, batch, n_threads,
                    kv_ranges=ranges)
        n += 1
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("-b", "--batches", default="1,8")
    ap.add_argument("--history", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="run this many steps instead of --seconds")
    args = ap.parse_args()
    from gpt4all_core import models
    with models.load(args.model) as model:
        for b in (int(v) for v in args.batches.split(",")):
            dt = step_time(model, b, args.history, args.seconds, args.threads, args.steps)
            print(f"B={b}: {dt * 1e3:.2f} ms a step, {b / dt:.0f} tokens/s", flush=True)


if __name__ == "__main__":
    main()
