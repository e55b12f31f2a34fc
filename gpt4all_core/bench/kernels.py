"""CPU kernels against the roofline: matrix-vector GB/s per weight type next to the machine's read
bandwidth, matrix-matrix GFLOP/s at a batch, and a compute probe.

Matrix-vector (token generation) reads every weight byte once, so its speed is weight bytes per
second; the bound is how fast this machine reads memory, measured in the same run with the same
threads by a plain C loop summing 64-bit words (kernels/matmul.c, gk_read_sum) over a buffer of the
same size. Ratios are given against its median (like for like) and its fastest repetition (strict).
Make the matrices larger than the last-level cache (--mib) so that both read from DRAM.
Matrix-matrix (prompt batches) is compute-bound: 2*M*K*N flops per product. The compute probe is an
F32 matrix product small enough to stay in cache (512 x 512 weights, 1 MiB, by a batch of 256): the
FLOP/s the kernels reach when memory is not in the way, the flat part of the roofline as measured
(not the CPU's theoretical peak).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

from gpt4all_core.gguf import TYPE_TRAITS, GGMLType

TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "IQ4_NL"]
FP16_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "IQ4_NL": [0],
               "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def parse_types(spec: str) -> list[str]:
    names = [s.strip().upper() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in TYPES]
    if bad or not names:
        raise ValueError(f"--types: unknown or unsupported type {bad[0] if bad else spec!r} "
                         f"(available: {', '.join(TYPES)})")
    return names


def weights(name: str, m: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Random raw blocks with finite fp16 scales (the kernels' speed does not depend on the values)."""
    block_size, type_size = TYPE_TRAITS[GGMLType[name]]
    if name == "F32":
        return rng.standard_normal((m, k), dtype=np.float32).view(np.uint8)
    if name == "BF16":
        return (rng.standard_normal((m, k), dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    if name == "F16":
        return rng.standard_normal((m, k), dtype=np.float32).astype(np.float16).view(np.uint8)
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


def run_kernels(types: list[str] | None = None, mib: int = 1024, k: int = 4096, batch: int = 512,
                threads: list[int] | None = None, repeats: int = 5, matmul_rows: int = 4096, probe: bool = True,
                progress: Callable[[str], None] | None = None) -> dict:
    """The kernels result: read bandwidth per thread count, one row per type, the compute probe.
    Dictionaries keyed by thread count use strings (as they come back from JSON)."""
    from gpt4all_core.backend import cpu_kernels as ck
    from gpt4all_core.bench.machine import machine

    types = types or TYPES
    threads = threads or sorted({1, ck.physical_cores()})
    rng = np.random.default_rng(0)
    say = progress or (lambda s: None)

    words = rng.integers(0, 2**63, max(1, mib << 17), dtype=np.uint64)  # mib MiB
    bandwidth, best_bandwidth = {}, {}
    for t in threads:
        median, fastest = best_of(lambda: ck.read_sum(words, n_threads=t), repeats)
        bandwidth[str(t)], best_bandwidth[str(t)] = words.nbytes / median / 1e9, words.nbytes / fastest / 1e9
    words = None  # free the buffer before the matrices
    say("read bandwidth (median / fastest): " + ", ".join(
        f"{t} thread{'s' * (t > 1)} {bandwidth[str(t)]:.1f} / {best_bandwidth[str(t)]:.1f} GB/s" for t in threads))

    peak = None
    if probe:
        pm, pk, pn = 512, 512, 256
        wp = weights("F32", pm, pk, rng)
        xp = rng.standard_normal((pn, pk), dtype=np.float32)
        med, _ = best_of(lambda: ck.matmul(wp, GGMLType.F32, xp, n_threads=threads[-1]), repeats)
        peak = {"type": "F32", "m": pm, "k": pk, "n": pn, "threads": threads[-1], "median_s": med,
                "GFLOP_per_s": 2 * pm * pk * pn / med / 1e9}
        say(f"compute probe (F32 {pm}x{pk} by {pn}, in cache, {threads[-1]} threads): {peak['GFLOP_per_s']:.1f} GFLOP/s")

    rows = []
    for name in types:
        t = GGMLType[name]
        block_size, type_size = TYPE_TRAITS[t]
        m = max(1, (mib << 20) // (k // block_size * type_size))
        w = weights(name, m, k, rng)
        x = rng.standard_normal(k, dtype=np.float32)
        row = {"type": name, "m": m, "k": k, "weight_bytes": int(w.nbytes), "matvec": {}}
        for nt in threads:
            med, best = best_of(lambda: ck.matmul(w, t, x, n_threads=nt), repeats)
            gbs = w.nbytes / med / 1e9
            row["matvec"][str(nt)] = {"median_s": med, "min_s": best, "GB_per_s": gbs,
                                      "of_bandwidth": gbs / bandwidth[str(nt)],
                                      "of_best_bandwidth": gbs / best_bandwidth[str(nt)]}
        w = None
        mm, n = matmul_rows, batch
        wb = weights(name, mm, k, rng)
        xb = rng.standard_normal((n, k), dtype=np.float32)
        med, best = best_of(lambda: ck.matmul(wb, t, xb, n_threads=threads[-1]), max(1, repeats // 2))
        row["matmul"] = {"m": mm, "k": k, "n": n, "threads": threads[-1], "weight_bytes": int(wb.nbytes),
                         "median_s": med, "GFLOP_per_s": 2 * mm * k * n / med / 1e9}
        rows.append(row)
        mv = ", ".join(f"{nt}t {v['GB_per_s']:.1f} GB/s ({100 * v['of_bandwidth']:.0f}% / "
                       f"{100 * v['of_best_bandwidth']:.0f}%)" for nt, v in row["matvec"].items())
        say(f"{name:7s} matvec {mv}; matmul {row['matmul']['GFLOP_per_s']:.1f} GFLOP/s")

    return {"benchmark": "kernels", "device": "cpu", "machine": machine(), "read_bandwidth_GB_per_s": bandwidth,
            "best_read_bandwidth_GB_per_s": best_bandwidth, "compute_probe": peak, "rows": rows,
            "repeats": repeats, "mib": mib, "batch": batch}
