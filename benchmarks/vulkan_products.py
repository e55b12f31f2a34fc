"""Vulkan products of the 32-element types (types_32) on the first device: matrix-vector GB/s of
the packed weights per type and column count, next to the device's bandwidth for add_f32 (reads
two floats, writes one); matrix-matrix GFLOP/s at a prompt batch. A tuning aid: --mv-spec and
--mm-spec try other specialization constants than types_32 picks.

    python benchmarks/vulkan_products.py [--types q4_0,q8_0] [--mib 512] [--k 4096] [--cols 1,2,4,8]
        [--batch 512] [--mv-spec 128,4,8] [--mm-spec 256,64,64,4,4] [-n 100] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from gpt4all_core.backend.vulkan import products, types_32
from gpt4all_core.backend.vulkan.context import Dispatch, ceil_div, get_context, make_params

BY_NAME = {layout.name: layout for layout in types_32.LAYOUTS}


def random_rows(layout: types_32.Layout, n_out: int, k: int, rng) -> np.ndarray:
    """GGUF rows of random bits with finite halves where the type has halves (values do not
    matter to the speed, NaNs and infinities might)."""
    row_bytes = k // types_32.BLOCK * layout.block_bytes
    raw = rng.integers(0, 256, (n_out, row_bytes), dtype=np.uint8)
    if layout.is_float:  # clear the top exponent bit of every element: finite, below 2
        elem = layout.block_bytes // types_32.BLOCK
        raw.reshape(n_out, -1, elem)[..., -1] &= 0x3F
    else:  # d (and m) are the halves at the start of a block: clear their top exponent bit
        start, stop = next(r for r in layout.scalars if r[0] == 0)
        raw.reshape(n_out, -1, layout.block_bytes)[..., start + 1:stop:2] &= 0x3F
    return raw


def time_dispatch(ctx, dispatch: Dispatch, tensors, n: int) -> float:
    """Seconds per dispatch: n of them recorded in one sequence (with Kompute's barriers between,
    as in the decoder), replayed after a warm-up."""
    algo = ctx.algorithm(dispatch, tensors)
    seq = ctx.sequence()  # one fence for every eval
    for _ in range(n):
        seq.record(ctx.kp.OpAlgoDispatch(algo))
    seq.eval()
    start = time.perf_counter()
    seq.eval()
    return (time.perf_counter() - start) / n


def add_bandwidth(ctx, n: int) -> float:
    """Bytes per second of c = a + b over 64M floats (12 bytes an element)."""
    words = 64 << 20
    a = [ctx.tensor(np.ones(words, np.float32), "device") for _ in range(3)]
    ctx.manager.sequence().record(ctx.kp.OpTensorSyncDevice(a)).eval()
    d = Dispatch("add_f32", (ceil_div(words, 64), 1, 1), (), (words,))
    return 12 * words / time_dispatch(ctx, d, a, n)


def with_spec(d: Dispatch, spec, n_out: int, max_cols: int, rows_at: int, cols_at: int) -> Dispatch:
    if not spec:
        return d
    groups = (ceil_div(n_out, spec[rows_at]), ceil_div(max_cols, spec[cols_at]), 1)
    z = ceil_div(groups[0], types_32.MAX_GROUPS)
    return Dispatch(d.shader, (ceil_div(groups[0], z), groups[1], z), tuple(spec), d.push)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", default="q4_0,q8_0,q4_1,q5_0,f16")
    ap.add_argument("--mib", type=int, default=512, help="weights of each matrix-vector run (well past the L2)")
    ap.add_argument("--k", type=int, default=4096, help="row length")
    ap.add_argument("--cols", default="1,2,4,8")
    ap.add_argument("--batch", type=int, default=512, help="columns of the matrix-matrix run (0: none)")
    ap.add_argument("--mv-spec", default="", help="threads,rows,cols")
    ap.add_argument("--mm-spec", default="", help="threads,tile rows,tile cols,rows a thread,cols a thread")
    ap.add_argument("-n", type=int, default=50, help="dispatches timed together")
    ap.add_argument("--json", default="", help="also write the results here")
    args = ap.parse_args()
    ctx = get_context(0)
    rng = np.random.default_rng(0)
    mv_spec = [int(v) for v in args.mv_spec.split(",")] if args.mv_spec else None
    mm_spec = [int(v) for v in args.mm_spec.split(",")] if args.mm_spec else None
    result = {"device": ctx.caps.name, "subgroup": ctx.caps.subgroup_size, "add_f32_GBps": add_bandwidth(ctx, 20) / 1e9,
              "mv": [], "mm": []}
    print(f"{ctx.caps.name}: add_f32 {result['add_f32_GBps']:.0f} GB/s", flush=True)
    for name in args.types.split(","):
        layout = BY_NAME[name]
        kernels = products.REGISTRY[int(layout.ggml_type)]
        n_out = max(64, (args.mib << 20) // (args.k // types_32.BLOCK * layout.block_bytes))
        words = kernels.pack(random_rows(layout, n_out, args.k, rng))
        w = ctx.tensor(words, "device")
        for max_cols in [int(c) for c in args.cols.split(",")]:
            x = ctx.tensor(rng.standard_normal(max_cols * args.k).astype(np.float32), "device")
            y = ctx.tensor(np.zeros(max_cols * n_out, np.float32), "device")
            p = ctx.tensor(make_params(max_cols, n_tokens=max_cols), "device")
            ctx.manager.sequence().record(ctx.kp.OpTensorSyncDevice([w, x, y, p])).eval()
            d = with_spec(kernels.mv(ctx.caps, n_out, args.k, max_cols), mv_spec, n_out, max_cols, 1, 2)
            d = Dispatch(d.shader, d.groups, d.spec, (n_out, args.k, 0, 0))
            sec = time_dispatch(ctx, d, [p, w, x, y], args.n)
            gbps = words.nbytes / sec / 1e9
            result["mv"].append({"type": name, "n_out": n_out, "k": args.k, "cols": max_cols, "spec": d.spec,
                                 "us": sec * 1e6, "GBps": gbps})
            print(f"mv {name} {n_out}x{args.k} cols {max_cols} spec {d.spec}: {sec * 1e6:.0f} us, {gbps:.0f} GB/s "
                  f"({gbps / result['add_f32_GBps']:.0%} of add_f32)", flush=True)
        del w
        if args.batch:
            n_mm = 4096
            words = kernels.pack(random_rows(layout, n_mm, args.k, rng))
            t = [ctx.tensor(make_params(args.batch, n_tokens=args.batch), "device"), ctx.tensor(words, "device"),
                 ctx.tensor(rng.standard_normal(args.batch * args.k).astype(np.float32), "device"),
                 ctx.tensor(np.zeros(args.batch * n_mm, np.float32), "device")]
            ctx.manager.sequence().record(ctx.kp.OpTensorSyncDevice(t)).eval()
            d = with_spec(kernels.mm(ctx.caps, n_mm, args.k, args.batch), mm_spec, n_mm, args.batch, 1, 2)
            d = Dispatch(d.shader, d.groups, d.spec, (n_mm, args.k, 0, 0))
            sec = time_dispatch(ctx, d, t, max(1, args.n // 5))
            gflops = 2 * n_mm * args.k * args.batch / sec / 1e9
            result["mm"].append({"type": name, "n_out": n_mm, "k": args.k, "cols": args.batch, "spec": d.spec,
                                 "us": sec * 1e6, "GFLOPs": gflops})
            print(f"mm {name} {n_mm}x{args.k} cols {args.batch} spec {d.spec}: {sec * 1e6:.0f} us, "
                  f"{gflops:.0f} GFLOP/s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
