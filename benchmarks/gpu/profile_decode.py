"""Where a decode step's time goes on a Vulkan device: the one-token sequence of each model file
recorded again with a GPU timestamp after every op (Kompute's sequence timestamps), so each
dispatch's time (its barrier's drain included) adds up per shader, next to the wall time of a
whole forward() and of the sequence's eval() alone. A chain of empty dispatches gives the floor
per dispatch.

    python benchmarks/gpu/profile_decode.py MODEL.gguf... [--device vulkan:0] [-n 32] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gpt4all_core.bench.vulkan_kernels import _eval_times  # noqa: E402


def rerecord(dec, cache, on_dispatch, make_sequence):
    """The decoder's one-token step (B = L = 1) recorded again: on_dispatch(dispatch, tensors) sees
    each dispatch as its algorithm is made, and make_sequence(manager, *args) makes the sequence in
    place of ctx.manager.sequence(*args). Returns _record's (sequence, logits)."""
    ctx = dec.ctx
    algorithm, manager = ctx.algorithm, ctx.manager

    def noted(dispatch, tensors):
        tensors = list(tensors)
        on_dispatch(dispatch, tensors)
        return algorithm(dispatch, tensors)

    class _Manager:
        def sequence(self, *args, **kwargs):
            return make_sequence(manager, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(manager, name)

    ctx.algorithm, ctx.manager = noted, _Manager()
    try:
        return dec._record(cache, 1, 1)
    finally:
        ctx.algorithm, ctx.manager = algorithm, manager


def _period_ns(device: str) -> float:
    from gpt4all_core.backend.vulkan import devices
    listed = devices.probe()[0]
    index = int(device.split(":")[1]) if ":" in device else 0
    return listed[index].timestamp_period_ns


def dispatch_floor(ctx, n: int = 400, extra: int = 0, params: str = "device") -> dict:
    """n one-word copies in one sequence: GPU time and wall time per dispatch. extra: more buffers
    bound (unused: Kompute records a barrier per bound buffer before each dispatch). params: the
    memory of the parameter buffer each dispatch reads ("host": host-visible, read over the bus)."""
    from gpt4all_core.backend.vulkan import ops
    from gpt4all_core.backend.vulkan.context import make_params
    P = ctx.tensor(make_params(8, n_tokens=1), params)
    if params == "device":
        ctx.manager.sequence().record(ctx.kp.OpTensorSyncDevice([P])).eval()
    a = ctx.tensor(np.arange(64, dtype=np.uint32), "device")
    b = ctx.tensor(np.zeros(64, np.uint32), "device")
    more = [ctx.tensor(np.zeros(64, np.uint32), "device") for _ in range(extra)]
    algo = ctx.algorithm(ops.copy_words(ctx.caps, 0, 0, 1, same_buffer=False), [P, a, b, *more])
    seq = ctx.manager.sequence(0, n + 1)
    for _ in range(n):
        seq.record(ctx.kp.OpAlgoDispatch(algo))
    walls = _eval_times(seq, 5, warm_s=0.5)  # warm: pipelines and the GPU's clocks
    ts = seq.get_timestamps()
    return {"dispatches": n, "buffers": 3 + extra, "params": params, "gpu_us_per_dispatch": (ts[-1] - ts[0]) / n / 1e3,
            "wall_us_per_dispatch": min(walls) / n * 1e6}


def profile(path: Path, device: str, n_tokens: int, period_ns: float) -> dict:
    from gpt4all_core import models
    model = models.load(path, device=device, ngl=999)
    dec = model.decoder
    cache = model.new_cache(n_tokens + 8)
    tok = np.array([1], np.int32)

    def step(p: int) -> None:
        pos = np.array([p], np.int32)
        dec.forward(cache, tok, pos, pos, p + 1, 1)

    step(0)  # records the (1, 1) sequence the ordinary way, warms up
    t0 = time.perf_counter()
    for p in range(1, n_tokens):
        step(p)
    forward_ms = (time.perf_counter() - t0) / (n_tokens - 1) * 1e3

    # the same sequence, recorded again with timestamps; the shader and weight bytes of each op
    # a decoder with its parameters in device memory copies them over first (one timestamp)
    ops_seen: list[tuple[str, int]] = [("sync params", 0)] if dec.params_kind == "device" else []

    def note(dispatch, tensors):
        ops_seen.append((dispatch.shader, tensors[1].size() * 4 if dispatch.shader.startswith("mul_") else 0))

    def timed(manager, queue_index=0, total_timestamps=0):  # a timestamp latched after each op
        return manager.sequence(queue_index, 4096)

    seq, logits = rerecord(dec, cache, note, timed)
    cache.sequences[(1, 1)] = (seq, logits)
    p = n_tokens // 2
    step(p)
    evals = _eval_times(seq, 10, warm_s=1.0)  # a second of decode steps first: the GPU's clocks up
    ts = np.array(seq.get_timestamps(), np.float64) * period_ns / 1e3  # us
    dt = np.diff(ts)
    n_dispatches = sum(1 for name, _ in ops_seen if not name.startswith("sync "))
    by = defaultdict(lambda: {"count": 0, "us": 0.0, "bytes": 0})
    for (name, nbytes), d in zip(ops_seen + [("sync logits", 0)] * (len(dt) - len(ops_seen)), dt):
        by[name]["count"] += 1
        by[name]["us"] += float(d)
        by[name]["bytes"] += nbytes
    weight_bytes = sum(b for _, b in ops_seen)
    product_us = sum(v["us"] for k, v in by.items() if k.startswith("mul_"))
    result = {"file": path.name, "ops": n_dispatches, "forward_ms": forward_ms,
              "eval_ms": statistics.median(evals) * 1e3, "gpu_ms": float(ts[-1] - ts[0]) / 1e3,
              "weight_bytes": weight_bytes, "product_ms": product_us / 1e3,
              "product_GB_per_s": weight_bytes / (product_us * 1e-6) / 1e9 if product_us else 0.0,
              "by_shader": {k: {**v, "GB_per_s": v["bytes"] / (v["us"] * 1e-6) / 1e9 if v["bytes"] else None}
                            for k, v in sorted(by.items(), key=lambda kv: -kv[1]["us"])}}
    model.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--device", default="vulkan:0")
    ap.add_argument("-n", type=int, default=32, help="tokens decoded to time forward()")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from gpt4all_core.backend.vulkan.context import get_context
    ctx = get_context(int(args.device.split(":")[1]) if ":" in args.device else 0)
    period = _period_ns(args.device)
    out = {"device": ctx.caps.name, "timestamp_period_ns": period,
           "floor": [dispatch_floor(ctx), dispatch_floor(ctx, extra=3), dispatch_floor(ctx, params="host")],
           "models": []}
    for f in out["floor"]:
        print(f"{ctx.caps.name}: an empty dispatch with {f['buffers']} buffers (parameters in {f['params']} memory) "
              f"costs {f['gpu_us_per_dispatch']:.2f} us on the GPU, {f['wall_us_per_dispatch']:.2f} us of wall time in "
              f"a chain of {f['dispatches']}")
    for path in args.models:
        r = profile(path, args.device, args.n, period)
        out["models"].append(r)
        print(f"\n{r['file']}: forward {r['forward_ms']:.2f} ms, eval {r['eval_ms']:.2f} ms, GPU {r['gpu_ms']:.2f} ms "
              f"over {r['ops']} ops; products {r['product_ms']:.2f} ms at {r['product_GB_per_s']:.0f} GB/s")
        for name, v in list(r["by_shader"].items())[:14]:
            gbs = f"{v['GB_per_s']:.0f} GB/s" if v["GB_per_s"] else ""
            print(f"  {name:24s} x{v['count']:4d} {v['us']:9.1f} us  {v['us'] / v['count']:7.2f} us each  {gbs}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
