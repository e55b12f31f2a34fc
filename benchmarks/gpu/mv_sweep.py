"""Matrix-vector workgroup shapes (threads x rows) per weight type, timed as a decoder runs them:
distinct matrices of a 7B llama's shapes one after another, each dispatch behind its barrier,
more bytes in all than the GPU's last-level cache holds. Picks, per type, the shape with the least
time over one block's products (4 of 4096 x 4096, 2 of 11008 x 4096, 1 of 4096 x 11008) and
prints it as $GPT4ALL_CORE_VULKAN_MV (which products.mv_override reads).

    python3 benchmarks/gpu/mv_sweep.py [--types q4_0,q8_0,q4_k] [--threads 32,64,128,256] [--rows 1,2,4,8]
        [--shapes 4096x4096:4,11008x4096:2,4096x11008:1] [--mib 160] [--json F] [--env-out F]

Every shape's result is checked against the type's default shape's on the same inputs (the
default is what the test suite checks against numpy).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gpt4all_core.backend.vulkan import products  # noqa: E402
from gpt4all_core.backend.vulkan.context import get_context, make_params  # noqa: E402
from gpt4all_core.bench.kernels import weights  # noqa: E402
from gpt4all_core.bench.vulkan_kernels import _eval_times, _upload  # noqa: E402
from gpt4all_core.gguf import GGMLType  # noqa: E402
from settings import environment  # noqa: E402  (this folder)

LAYER_SHAPES = "4096x4096:4,11008x4096:2,4096x11008:1"  # llama-2 7B: q k v o, gate up, down


def parse_shapes(text: str) -> list[tuple[int, int, int]]:
    out = []
    for item in filter(None, text.split(",")):
        shape, _, count = item.partition(":")
        n_out, n_in = (int(v) for v in shape.split("x"))
        out.append((n_out, n_in, int(count or 1)))
    return out


def _dispatch(caps, t: int, name: str, n_out: int, n_in: int, config):
    """The type's own mv dispatch, or with threads x rows forced through the override."""
    with environment({products.MV_ENV: None if config is None else f"{name}={config[0]}x{config[1]}"}):
        return products.product(caps, t, n_out, n_in, 1)


def time_shape(ctx, d, bufs, x, y, params, rounds: int, repeats: int, warm_s: float) -> float:
    """Seconds per matrix: `rounds` passes over the distinct matrices in one recorded sequence."""
    algos = [ctx.algorithm(d, [params, w, x, y]) for w in bufs]
    seq = ctx.sequence()  # one fence for every eval
    for _ in range(rounds):
        for a in algos:
            seq.record(ctx.kp.OpAlgoDispatch(a))
    return statistics.median(_eval_times(seq, repeats, warm_s)) / (rounds * len(bufs))


def result_of(ctx, d, w, x, y, params) -> np.ndarray:
    algo = ctx.algorithm(d, [params, w, x, y])
    ctx.manager.sequence().record(ctx.kp.OpAlgoDispatch(algo)).record(ctx.kp.OpTensorSyncLocal([y])).eval()
    return np.array(y.data(), copy=True)


def sweep_type(ctx, name: str, shapes, configs, mib: int, rounds: int, repeats: int, warm_s: float,
               say, deadline: float) -> dict:
    t = int(GGMLType[name.upper()])
    kern = products.REGISTRY[t]
    rng = np.random.default_rng(1)
    params = ctx.tensor(make_params(1, n_tokens=1, n_logits=1), "host")
    default = _dispatch(ctx.caps, t, name, 4096, 4096, None).spec
    rows = {}
    for n_out, n_in, count in shapes:
        packed = kern.pack(weights(name.upper(), n_out, n_in, rng))
        n = max(2, (mib << 20) // packed.nbytes)
        bufs = [_upload(ctx, packed) for _ in range(n)]
        x = ctx.tensor(rng.standard_normal(n_in, dtype=np.float32), "device")
        ctx.manager.sequence().record(ctx.kp.OpTensorSyncDevice([x])).eval()
        y = ctx.tensor(np.zeros(n_out, np.float32), "device")  # read back for the check
        ref = result_of(ctx, _dispatch(ctx.caps, t, name, n_out, n_in, None), bufs[0], x, y, params)
        scale = float(np.abs(ref).max()) or 1.0
        for config in [None] + configs:
            if time.time() > deadline:
                break
            d = _dispatch(ctx.caps, t, name, n_out, n_in, config)
            key = "default" if config is None else f"{config[0]}x{config[1]}"
            err = float(np.abs(result_of(ctx, d, bufs[0], x, y, params) - ref).max()) / scale
            sec = time_shape(ctx, d, bufs, x, y, params, rounds, repeats, warm_s)
            r = rows.setdefault(key, {"spec": list(d.spec), "shapes": {}, "layer_s": 0.0})
            r["shapes"][f"{n_out}x{n_in}"] = {"s": sec, "GB_per_s": packed.nbytes / sec / 1e9, "rel_err": err,
                                             "matrices": n}
            r["layer_s"] += count * sec
            if err > 1e-4:
                r["wrong"] = True
                say(f"{name} {key} {n_out}x{n_in}: WRONG, max error {err:.2e} of the default's largest value")
        bufs = None
    whole = {k: r for k, r in rows.items() if len(r["shapes"]) == len(shapes) and not r.get("wrong")}
    best = min(whole, key=lambda k: whole[k]["layer_s"]) if whole else None
    for k, r in sorted(rows.items(), key=lambda kv: kv[1]["layer_s"]):
        gbs = " ".join(f"{s} {v['GB_per_s']:6.0f}" for s, v in r["shapes"].items())
        say(f"{name:5s} {k:>8s} spec {r['spec']}: block {1e6 * r['layer_s']:7.1f} us; GB/s {gbs}")
    return {"type": name, "default_spec": list(default), "rows": rows, "best": best}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", default="q4_0,q8_0,q4_k,q6_k,q4_1,q5_0,q5_1,q5_k,q2_k,q3_k,f16,f32")
    ap.add_argument("--threads", default="32,64,128,256")
    ap.add_argument("--rows", default="1,2,4,8")
    ap.add_argument("--shapes", default=LAYER_SHAPES, help="N_OUTxN_IN:COUNT,... (count: how many a block has)")
    ap.add_argument("--mib", type=int, default=160, help="bytes of distinct matrices of each shape (past the L2)")
    ap.add_argument("--rounds", type=int, default=4, help="passes over them in one recorded sequence")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warm", type=float, default=0.15, help="seconds of the same work before each timing")
    ap.add_argument("--seconds", type=float, default=float("inf"), help="stop starting new work after this long")
    ap.add_argument("--json", default="")
    ap.add_argument("--env-out", default="", help="write the best shapes here as $GPT4ALL_CORE_VULKAN_MV")
    args = ap.parse_args()
    deadline = time.time() + args.seconds
    ctx = get_context(0)
    say = lambda s: print(f"[{time.strftime('%H:%M:%S')}] {s}", flush=True)  # noqa: E731
    configs = [(t, r) for t in map(int, args.threads.split(",")) for r in map(int, args.rows.split(","))
               if t <= ctx.caps.max_workgroup_invocations]
    shapes = parse_shapes(args.shapes)
    results = []
    for name in filter(None, args.types.split(",")):
        if time.time() > deadline:
            say(f"{name}: no time left")
            break
        if int(GGMLType[name.upper()]) not in products.REGISTRY:
            say(f"{name}: no Vulkan kernels")
            continue
        results.append(sweep_type(ctx, name, shapes, configs, args.mib, args.rounds, args.repeats, args.warm, say,
                                  deadline))
    env = ",".join(f"{r['type']}={r['best']}" for r in results if r["best"] not in (None, "default"))
    summary = []
    for r in results:
        if r["best"] is None:
            continue
        b, d = r["rows"][r["best"]], r["rows"]["default"]
        summary.append(f"{r['type']:5s} best {r['best']:>8s} block {1e6 * b['layer_s']:7.1f} us, default "
                       f"{r['default_spec']} {1e6 * d['layer_s']:7.1f} us ({d['layer_s'] / b['layer_s']:.2f}x)")
    print("\n".join(summary))
    print(f"{products.MV_ENV}={env}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": ctx.caps.name, "shapes": args.shapes, "mib": args.mib,
                                               "rounds": args.rounds, "types": results, "env": env}, indent=1))
    if args.env_out:
        Path(args.env_out).write_text(env + "\n")


if __name__ == "__main__":
    main()
