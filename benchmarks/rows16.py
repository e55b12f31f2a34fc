"""Q4_0, Q4_1 and Q8_0 products in the GGUF row layout against rows repacked 16 at a time
(kernels/rows16.c, what the decoder uses on AVX-512 VNNI), one thread, on 1 and 8 activation rows,
rounds interleaved. The repacked product is checked against float64 first.

    .venv/bin/python benchmarks/rows16.py [--types Q4_0,Q4_1,Q8_0] [--rounds 7] [--calls 40] [--save]

--save writes benchmarks/results/rows16-<commit>.json with the machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gpt4all_core.backend import cpu_kernels as ck  # noqa: E402
from gpt4all_core.gguf.types import GGMLType  # noqa: E402

Q8_0S = 31
TYPES = ("Q4_0", "Q4_1", "Q8_0")
SHAPES = [(12288, 576), (4608, 1536), (98304, 576)]  # 8 x SmolLM2's gate, 8 x its down (in L3); 64 x its gate (35 MB)


def ms_per_call(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for name in args.types.split(","):
        t = int(GGMLType[name])
        if not ck.rows16_supported(t):
            sys.exit(f"rows16 needs AVX-512 VNNI; this CPU runs {ck.simd_level()}")
        for m, k in SHAPES:
            raw = ck.quantize(rng.standard_normal((m, k)).astype(np.float32), t)
            packed = ck.repack_rows16(raw, t)
            w64 = ck.dequantize(raw, t).astype(np.float64)
            for n in (1, 8):
                x = rng.standard_normal((n, k)).astype(np.float32)
                y = ck.matmul_rows16(packed, t, x, n_threads=1)
                x_q = ck.dequantize(ck.quantize(x, Q8_0S), Q8_0S).astype(np.float64)
                assert np.all(np.abs(y - x_q @ w64.T) <= 1e-5 * (np.abs(x_q) @ np.abs(w64).T) + 1e-6), (name, m, k, n)
                plain, repacked = [], []
                for _ in range(args.rounds):
                    plain.append(ms_per_call(lambda: ck.matmul(raw, t, x, n_threads=1), args.calls))
                    repacked.append(ms_per_call(lambda: ck.matmul_rows16(packed, t, x, n_threads=1), args.calls))
                a, b = statistics.median(plain), statistics.median(repacked)
                print(f"{name} {m:6d} x {k:5d}, {n} rows: GGUF rows {a:7.3f} ms, rows16 {b:7.3f} ms, {a / b:5.2f}x")
                rows.append({"type": name, "m": m, "k": k, "n": n, "rows_ms": plain, "rows16_ms": repacked,
                             "ratio": a / b})
    if args.save:
        from gpt4all_core.bench.machine import commit, machine
        out = ROOT / "benchmarks" / "results" / f"rows16-{commit()[:7]}.json"
        out.write_text(json.dumps({"benchmark": "rows16", "machine": machine(), "threads": 1, "rounds": args.rounds,
                                   "calls": args.calls, "rows": rows}, indent=1))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
