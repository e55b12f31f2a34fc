"""A prototype beside the engine's own Q4_1 product, one thread: 16 weight rows interleaved
(q4_1_rows16.c) against the engine's tiles (kernels/gemm_avx512.c), on 1 and 8 activation rows.
Checks the prototype against float64 of the dequantized weights first; it is not in the engine.

    .venv/bin/python benchmarks/proto/rows16.py [--rounds 7] [--calls 40] [--save]

--save writes benchmarks/results/proto-rows16-<commit>.json with the machine.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from gpt4all_core.backend import cpu_kernels  # noqa: E402

Q4_1, Q8_0S = 3, 31
SHAPES = [(12288, 576), (4608, 1536), (98304, 576)]  # 8 x SmolLM2's gate, 8 x its down (in L3); 64 x its gate (35 MB)


def build(tmp: Path) -> ctypes.CDLL:
    lib = tmp / "rows16.so"
    subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", "-o", str(lib),
                    str(Path(__file__).with_name("q4_1_rows16.c"))], check=True)
    return ctypes.CDLL(str(lib))


def interleave(raw: np.ndarray, nb: int) -> np.ndarray:
    """[m, nb * 20] Q4_1 rows to groups of 16 rows, block by block: 16 d, 16 m, 4 x 16 qs words."""
    m = raw.shape[0]
    blocks = raw.reshape(m // 16, 16, nb, 20).transpose(0, 2, 1, 3)  # group, block, row, bytes
    d = blocks[..., 0:2].reshape(m // 16, nb, 32)
    mins = blocks[..., 2:4].reshape(m // 16, nb, 32)
    words = blocks[..., 4:20].reshape(m // 16, nb, 16, 4, 4).transpose(0, 1, 3, 2, 4).reshape(m // 16, nb, 256)
    return np.ascontiguousarray(np.concatenate([d, mins, words], axis=2))


def median_call_ms(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args()
    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(Path(tmp))
        f = lib.q4_1_rows16
        f.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        for m, k in SHAPES:
            nb = k // 32
            raw = cpu_kernels.quantize(rng.standard_normal((m, k)).astype(np.float32), Q4_1)
            w64 = cpu_kernels.dequantize(raw, Q4_1).astype(np.float64)
            packed = interleave(raw, nb)
            for n in (1, 8):
                x = rng.standard_normal((n, k)).astype(np.float32)
                acts = cpu_kernels.quantize(x, Q8_0S)
                out = np.zeros((n, m), np.float32)
                call = lambda: f(packed.ctypes.data, m, nb, acts.ctypes.data, n, out.ctypes.data)  # noqa: E731
                call()
                # float64 of the weights times the quantized activations (Q8_0S: d, sum, 32 levels)
                blocks = acts.reshape(n, nb, 36)
                d = blocks[..., 0:2].copy().view(np.float16).astype(np.float64)
                levels = blocks[..., 4:36].view(np.int8).astype(np.float64)
                a64 = (levels * d).reshape(n, k)
                want = a64 @ w64.T
                bound = 1e-5 * (np.abs(a64) @ np.abs(w64).T)
                assert np.all(np.abs(out - want) <= bound), f"{m}x{k}, n={n}: off float64 by more than 1e-5"
                engine = lambda: cpu_kernels.matmul(raw, Q4_1, x, n_threads=1)  # noqa: E731
                ours, theirs = [], []
                for _ in range(args.rounds):
                    theirs.append(median_call_ms(engine, args.calls))
                    ours.append(median_call_ms(call, args.calls))
                e, p = statistics.median(theirs), statistics.median(ours)
                print(f"{m:6d} x {k:5d}, {n} rows: engine {e:7.3f} ms, rows16 {p:7.3f} ms, engine / rows16 {e / p:5.2f}x")
                rows.append({"m": m, "k": k, "n": n, "engine_ms": theirs, "rows16_ms": ours, "ratio": e / p})
    if args.save:
        from gpt4all_core.bench.machine import commit, machine
        out = ROOT / "benchmarks" / "results" / f"proto-rows16-{commit()[:7]}.json"
        out.write_text(json.dumps({"benchmark": "proto-rows16", "machine": machine(), "threads": 1,
                                   "rounds": args.rounds, "calls": args.calls, "rows": rows}, indent=1))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
