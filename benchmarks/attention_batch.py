"""The CPU attention op alone, as a batched decode step runs it: B sequences of one F16 cache, each
token attending over its own `--history` slots (kv ranges), SmolLM2's heads (9 query heads on 3 kv
heads, 64 wide) by default. Prints the fastest and the median of `--runs` timings of 10 calls each
(the fastest: the op without the VM's interruptions).

    .venv/bin/python benchmarks/attention_batch.py [-b 8] [--history 150] [--heads 9] [--kv-heads 3] [--threads 1,2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-b", type=int, default=8, help="sequences (tokens a step)")
    ap.add_argument("--history", type=int, default=150, help="slots each token attends over")
    ap.add_argument("--heads", type=int, default=9)
    ap.add_argument("--kv-heads", type=int, default=3)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=400)
    args = ap.parse_args()
    from gpt4all_core.backend import cpu_kernels as ck
    rng = np.random.default_rng(0)
    b, h, hkv, d, hist = args.b, args.heads, args.kv_heads, args.head_dim, args.history
    room = hist + 8
    q = rng.standard_normal((b, h, d)).astype(np.float32)
    k = rng.standard_normal((b * room, hkv, d)).astype(np.float16)
    v = rng.standard_normal((b * room, hkv, d)).astype(np.float16)
    kv_pos = np.full(b * room, -1, np.int32)
    for s in range(b):
        kv_pos[s * room:s * room + hist] = np.arange(hist)
    q_pos = np.full(b, hist - 1, np.int32)
    ranges = np.array([[s * room, s * room + hist] for s in range(b)], np.int32)
    for threads in (int(t) for t in args.threads.split(",")):
        out = ck.attention(q, k, v, q_pos=q_pos, kv_pos=kv_pos, kv_range=ranges, n_threads=threads)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            for _ in range(10):
                ck.attention(q, k, v, q_pos=q_pos, kv_pos=kv_pos, kv_range=ranges, n_threads=threads, out=out)
            times.append((time.perf_counter() - t0) / 10)
        print(f"B={b} history {hist}, {h} heads on {hkv} kv heads of {d}, {threads} threads: "
              f"fastest {min(times) * 1e6:.1f} us, median {statistics.median(times) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
