"""CPU kernels against the roofline: matrix-vector GB/s per weight type next to the machine's read
bandwidth, and matrix-matrix GFLOP/s at a batch of 512.

    python benchmarks/kernels.py [--types Q4_0,Q8_0] [--mib 1024] [-r 5] [--save]

Matrix-vector (token generation) reads every weight byte once, so its speed is weight bytes per
second; the bound is how fast this machine reads memory, measured here with the same threads by a
plain C loop summing 64-bit words (kernels/matmul.c, gk_read_sum) over a buffer of the same size.
Ratios are given against its median (like for like) and its fastest repetition (strict).
The weight matrix is larger than the last-level cache the VM shows, so both read from DRAM.
Matrix-matrix (prompt batches) is compute-bound: 2*M*K*N flops per product.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.gguf import TYPE_TRAITS, GGMLType

HERE = Path(__file__).resolve().parent
TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "IQ4_NL"]
FP16_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "IQ4_NL": [0],
               "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def weights(name: str, m: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Random raw blocks with finite fp16 scales (the kernels' speed does not depend on the values)."""
    block_size, type_size = TYPE_TRAITS[GGMLType[name]]
    if name == "F32":
        return rng.standard_normal((m, k), dtype=np.float32).view(np.uint8)
    if name in ("F16", "BF16"):
        return (rng.standard_normal((m, k), dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8) \
            if name == "BF16" else rng.standard_normal((m, k), dtype=np.float32).astype(np.float16).view(np.uint8)
    raw = rng.integers(0, 256, (m, k // block_size, type_size), dtype=np.uint8)
    for off in FP16_FIELDS[name]:
        raw[..., off:off + 2] = np.full(raw.shape[:2], 0.01, np.float16).view(np.uint8).reshape(raw.shape[:2] + (2,))
    return raw.reshape(m, -1)


def best_of(fn, repeats: int) -> tuple[float, float]:
    """(median, min) seconds of fn() over repeats after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", ".", ":!results"], cwd=HERE,  # code, not results
                                capture_output=True, text=True).stdout.strip())
    return {"cpu": cpu, "cores": ck.physical_cores(), "simd": ck.simd_level(),
            "avx512_vnni": "avx512_vnni" in flags, "python": platform.python_version(),
            "commit": commit + ("-dirty" if dirty else ""), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--mib", type=int, default=1024, help="size of each matrix-vector weight matrix")
    ap.add_argument("--k", type=int, default=4096, help="row length")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", default=None, help="thread counts, e.g. 1,2 (default: 1 and the cores)")
    ap.add_argument("-r", "--repeats", type=int, default=5)
    ap.add_argument("--save", action="store_true", help="write JSON and a PNG plot to benchmarks/results/")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, ck.physical_cores()})
    rng = np.random.default_rng(0)
    k = args.k

    words = rng.integers(0, 2**63, args.mib << 17, dtype=np.uint64)  # args.mib MiB
    # Two rooflines: the median read bandwidth (the same statistic as the kernels' median: the
    # like-for-like ratio), and the fastest repetition (the most this machine delivered: the strict one).
    bandwidth, best_bandwidth = {}, {}
    for t in threads:
        median, fastest = best_of(lambda: ck.read_sum(words, n_threads=t), args.repeats)
        bandwidth[t], best_bandwidth[t] = words.nbytes / median / 1e9, words.nbytes / fastest / 1e9
    del words
    print("read bandwidth (median / fastest): " + ", ".join(
        f"{t} thread{'s' * (t > 1)} {bandwidth[t]:.1f} / {best_bandwidth[t]:.1f} GB/s" for t in threads))

    rows = []
    for name in args.types.split(","):
        t = GGMLType[name]
        block_size, type_size = TYPE_TRAITS[t]
        m = max(1, (args.mib << 20) // (k // block_size * type_size))
        w = weights(name, m, k, rng)
        x = rng.standard_normal(k, dtype=np.float32)
        row = {"type": name, "m": m, "k": k, "weight_bytes": int(w.nbytes), "matvec": {}}
        for nt in threads:
            med, best = best_of(lambda: ck.matmul(w, t, x, n_threads=nt), args.repeats)
            gbs = w.nbytes / med / 1e9
            row["matvec"][nt] = {"median_s": med, "min_s": best, "GB_per_s": gbs, "of_bandwidth": gbs / bandwidth[nt],
                                 "of_best_bandwidth": gbs / best_bandwidth[nt]}
        del w
        mm, kk, n = 4096, k, args.batch
        wb = weights(name, mm, kk, rng)
        xb = rng.standard_normal((n, kk), dtype=np.float32)
        med, best = best_of(lambda: ck.matmul(wb, t, xb, n_threads=threads[-1]), max(1, args.repeats // 2))
        row["matmul"] = {"m": mm, "k": kk, "n": n, "threads": threads[-1], "median_s": med,
                         "GFLOP_per_s": 2 * mm * kk * n / med / 1e9}
        rows.append(row)
        mv = ", ".join(f"{nt}t {v['GB_per_s']:.1f} GB/s ({100 * v['of_bandwidth']:.0f}% / {100 * v['of_best_bandwidth']:.0f}%)"
                       for nt, v in row["matvec"].items())
        print(f"{name:7s} matvec {mv}; matmul {row['matmul']['GFLOP_per_s']:.1f} GFLOP/s", flush=True)

    result = {"benchmark": "kernels", "machine": machine(), "read_bandwidth_GB_per_s": bandwidth,
              "best_read_bandwidth_GB_per_s": best_bandwidth, "rows": rows, "repeats": args.repeats}
    if args.save:
        out = HERE / "results" / f"kernels-cpu-{result['machine']['commit']}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        plot(result, out.with_suffix(".png"))
        print(f"saved {out.relative_to(HERE.parent)} and {out.with_suffix('.png').name}")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    threads = sorted({int(t) for r in rows for t in r["matvec"]})
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(threads)
    for i, nt in enumerate(threads):
        ax.bar([j + i * width for j in range(len(rows))], [r["matvec"][nt]["GB_per_s"] for r in rows], width,
               label=f"matrix-vector, {nt} thread{'s' * (nt > 1)}")
        ax.axhline(result["read_bandwidth_GB_per_s"][nt], linestyle="--", color=f"C{i}",
                   label=f"read bandwidth, {nt} thread{'s' * (nt > 1)}")
    ax.set_xticks([j + width * (len(threads) - 1) / 2 for j in range(len(rows))], [r["type"] for r in rows])
    ax.set_ylabel("weight bytes read, GB/s")
    m = result["machine"]
    ax.set_title(f"gpt4all-core CPU matrix-vector vs read bandwidth ({m['cpu']}, {m['simd']}, {m['commit']})")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
