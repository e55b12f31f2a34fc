"""Vulkan kernels against the roofline: matrix-vector GB/s per weight type next to the device's copy
bandwidth, and matrix-matrix GFLOP/s at a batch (`gpt4all-core bench kernels --device vulkan:N`).

The bound for matrix-vector is the device's memory bandwidth, measured in the same run by our
copy_words shader over two buffers of the same size as the weights (bytes read plus bytes
written, the way GPU copy bandwidth is usually quoted). Each figure times a sequence of `reps`
dispatches recorded once and submitted once, so submission cost is spread out (and the sequence keeps
one fence, VulkanContext.sequence: a fresh one each submit cost an H100 about 0.5 ms); matrices are
larger than any GPU's last-level cache (--mib).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

from gpt4all_core.bench.kernels import weights
from gpt4all_core.gguf import TYPE_TRAITS, GGMLType

TYPES = ["F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]


WARM_SECONDS = 0.5  # of back-to-back evals before timing: a GPU idle a moment ago may run at low clocks


def _eval_times(seq, repeats: int, warm_s: float = WARM_SECONDS) -> list[float]:
    """Seconds of each of `repeats` evals of a recorded sequence, after warm_s of the same evals
    (pipelines, caches and the GPU's clocks: timed after seconds of packing on the CPU, an H100
    read Q4_1 at a fifth of the speed of Q4_0, timed right after other work, on the same shader
    shape)."""
    start = time.perf_counter()
    seq.eval()
    while time.perf_counter() - start < warm_s:
        seq.eval()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        seq.eval()
        times.append(time.perf_counter() - t0)
    return times


def _timed(ctx, dispatch, tensors, reps: int, repeats: int) -> tuple[float, float]:
    """(median, min) seconds per dispatch over `repeats` submits of `reps` recorded dispatches."""
    kp = ctx.kp
    algo = ctx.algorithm(dispatch, tensors)
    seq = ctx.sequence()  # one fence for every eval
    for _ in range(reps):
        seq.record(kp.OpAlgoDispatch(algo))
    times = [t / reps for t in _eval_times(seq, repeats)]
    return statistics.median(times), min(times)


def _tiled_rows(name: str, m: int, k: int, rng) -> np.ndarray:
    """m rows of random blocks: 4096 distinct rows repeated (the speed does not depend on values,
    and no cache holds the hundreds of MiB that repeat)."""
    base = weights(name, min(m, 4096), k, rng)
    return np.ascontiguousarray(np.resize(base, (m, base.shape[1])))


def run_vulkan_kernels(device_index: int = 0, types: list[str] | None = None, mib: int = 512, k: int = 4096,
                       batch: int = 512, reps: int = 10, repeats: int = 5, matmul_rows: int = 4096,
                       progress: Callable[[str], None] | None = None) -> dict:
    from gpt4all_core.backend.vulkan import ops, products
    from gpt4all_core.backend.vulkan.context import get_context, make_params
    from gpt4all_core.bench.machine import machine

    ctx = get_context(device_index)
    say = progress or (lambda s: None)
    rng = np.random.default_rng(0)
    types = [t for t in (types or TYPES) if int(GGMLType[t]) in products.REGISTRY]

    words = (mib << 20) // 4
    params = ctx.tensor(make_params(batch, n_tokens=1, n_logits=1), "host")
    src = _upload(ctx, rng.integers(0, 2**32, words, dtype=np.uint32))  # random: never time zeros
    dst = ctx.tensor(np.zeros(words, np.uint32), "storage")
    med, best = _timed(ctx, ops.copy_words(ctx.caps, 0, 0, words, same_buffer=False), [params, src, dst], reps, repeats)
    copy_bw, copy_best = 2 * words * 4 / med / 1e9, 2 * words * 4 / best / 1e9
    src = dst = None
    say(f"{ctx.caps.name}: copy bandwidth (read + write) {copy_bw:.0f} GB/s median, {copy_best:.0f} fastest")

    rows = []
    for name in types:
        t = int(GGMLType[name])
        block_size, type_size = TYPE_TRAITS[GGMLType[name]]
        m = max(1, (mib << 20) // (k // block_size * type_size))
        kern = products.REGISTRY[t]
        packed = kern.pack(_tiled_rows(name, m, k, rng))
        w = _upload(ctx, packed)
        x = ctx.tensor(rng.standard_normal(batch * k, dtype=np.float32), "device")
        y = ctx.tensor(np.zeros(m, np.float32), "storage")
        ctx.manager.sequence().record(ctx.kp.OpTensorSyncDevice([x])).eval()
        d = products.product(ctx.caps, t, m, k, 1)
        med, best = _timed(ctx, _with_push(d, m, k), [params, w, x, y], reps, repeats)
        gbs = packed.nbytes / med / 1e9
        row = {"type": name, "m": m, "k": k, "weight_bytes": int(packed.nbytes), "shader": d.shader,
               "spec": list(d.spec),
               "matvec": {"median_s": med, "min_s": best, "GB_per_s": gbs, "of_copy_bandwidth": gbs / copy_bw,
                          "of_best_copy_bandwidth": gbs / copy_best}}
        w = y = None
        row["matvec_chain"] = _chain(ctx, kern, t, name, k, mib, params, x, rng, repeats)
        y = ctx.tensor(np.zeros(batch * matmul_rows, np.float32), "storage")
        wb = _upload(ctx, kern.pack(_tiled_rows(name, matmul_rows, k, rng)))
        batch_params = ctx.tensor(make_params(batch, n_tokens=batch, n_logits=batch), "host")
        d = products.product(ctx.caps, t, matmul_rows, k, batch)
        med, _ = _timed(ctx, _with_push(d, matmul_rows, k), [batch_params, wb, x, y], 2, max(1, repeats // 2))
        row["matmul"] = {"m": matmul_rows, "k": k, "n": batch, "shader": d.shader, "spec": list(d.spec),
                         "median_s": med,
                         "GFLOP_per_s": 2 * matmul_rows * k * batch / med / 1e9}
        rows.append(row)
        chain = row["matvec_chain"]["GB_per_s"]
        say(f"{name:5s} matvec {gbs:7.1f} GB/s ({100 * gbs / copy_bw:.0f}% of copy), {k}x{k} chain {chain:7.1f} GB/s, "
            f"matmul {row['matmul']['GFLOP_per_s']:.0f} GFLOP/s")
    return {"benchmark": "kernels", "device": f"vulkan:{device_index}", "device_name": ctx.caps.name,
            "machine": machine(), "copy_bandwidth_GB_per_s": copy_bw, "best_copy_bandwidth_GB_per_s": copy_best,
            "rows": rows, "reps": reps, "repeats": repeats, "mib": mib, "batch": batch}


def _chain(ctx, kern, t: int, name: str, k: int, mib: int, params, x, rng, repeats: int) -> dict:
    """Matrix-vector products as a decoder runs them: distinct k x k matrices (a 7B model's attention
    shape) one after another in one sequence, each dispatch behind its barrier, mib in all."""
    from gpt4all_core.backend.vulkan import products
    packed = kern.pack(weights(name, k, k, rng))
    n = max(2, (mib << 20) // packed.nbytes)
    ws = [_upload(ctx, packed) for _ in range(n)]
    y = ctx.tensor(np.zeros(k, np.float32), "storage")
    d = _with_push(products.product(ctx.caps, t, k, k, 1), k, k)
    seq = ctx.sequence()  # one fence for every eval
    for w in ws:
        seq.record(ctx.kp.OpAlgoDispatch(ctx.algorithm(d, [params, w, x, y])))
    med = statistics.median(_eval_times(seq, repeats))
    return {"m": k, "k": k, "matrices": n, "median_s_per_matrix": med / n,
            "GB_per_s": n * packed.nbytes / med / 1e9}


def _with_push(d, n_out: int, n_in: int):
    from gpt4all_core.backend.vulkan.context import Dispatch
    return Dispatch(d.shader, d.groups, d.spec, (n_out, n_in, 0, 0))


def _upload(ctx, words: np.ndarray):
    from gpt4all_core.backend.vulkan.decoder import _Uploader
    return _Uploader(ctx).upload(words)
