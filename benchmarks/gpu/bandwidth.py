"""Device memory bandwidth of the lent GPU, the roof for token generation: a device-to-device copy
through PyTorch (CUDA), Kompute's OpTensorCopy (vkCmdCopyBuffer), and compute shaders through
Kompute that copy and that only read with uvec4 loads, the way our shaders read weights.
A copy counts bytes read plus bytes written; the read-only shader counts bytes read.

    python benchmarks/gpu/bandwidth.py [--mib 2048] [-r 20] [--json FILE]

Buffers hold random words (never zeros) and are far larger than the L2 cache. Each figure is the
best of 5 timed runs of r back-to-back operations, after a warm-up (wall clock around eval()/a
synchronize: r operations make the submit cost negligible). glslc compiles the shaders here.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

COPY = """#version 450
layout(local_size_x_id = 0) in;
layout(set = 0, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(set = 0, binding = 1) writeonly buffer Dst { uvec4 dst[]; };
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) dst[i] = src[i];
}
"""
# each invocation folds what it read into one word, so no load can be optimized away
READ = """#version 450
layout(local_size_x_id = 0) in;
layout(set = 0, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(set = 0, binding = 1) writeonly buffer Sink { uint sink[]; };
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uvec4 acc = uvec4(0);
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) acc ^= src[i];
    sink[gl_GlobalInvocationID.x] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}
"""
LOCAL = 256


def best_rate(nbytes: int, run, trials: int = 5) -> float:
    """GB/s of nbytes moved by one call of run (which must wait for the device), best of trials."""
    run()
    times = []
    for _ in range(trials):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return nbytes / min(times) / 1e9


def torch_copy(nbytes: int, reps: int) -> dict:
    import torch
    x = torch.randint(0, 256, (nbytes,), dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)

    def run():
        for _ in range(reps):
            y.copy_(x)
        torch.cuda.synchronize()

    rate = best_rate(2 * nbytes * reps, run)
    del x, y
    torch.cuda.empty_cache()
    return {"copy_GBps": round(rate, 1), "device": torch.cuda.get_device_name(0)}


def compile_shader(source: str, tmp: Path) -> bytes:
    src, spv = tmp / "s.comp", tmp / "s.spv"
    src.write_text(source)
    subprocess.run(["glslc", "--target-env=vulkan1.1", "-O", str(src), "-o", str(spv)], check=True)
    return spv.read_bytes()


def kompute(nbytes: int, reps: int) -> dict:
    import kp
    mgr = kp.Manager(0)
    words = nbytes // 4 // 4 * 4  # whole uvec4s
    data = np.random.default_rng(0).integers(0, 2**32, size=words, dtype=np.uint32)
    src = mgr.tensor_t(data, kp.TensorTypes.device)
    dst = mgr.tensor_t(np.zeros(words, np.uint32), kp.TensorTypes.storage)
    mgr.sequence().record(kp.OpTensorSyncDevice([src])).eval()
    result = {"device": mgr.get_device_properties()["device_name"]}

    def timed_sequence():  # one fence for every eval, where the patched kp can (0.5 ms each on an H100)
        seq = mgr.sequence()
        if hasattr(seq, "reuse_fence"):
            seq.reuse_fence = True
        return seq

    seq = timed_sequence()
    for _ in range(reps):
        seq.record(kp.OpTensorCopy([src, dst]))
    result["OpTensorCopy_GBps"] = round(best_rate(2 * 4 * words * reps, seq.eval), 1)

    with tempfile.TemporaryDirectory() as tmp:
        shaders = {name: compile_shader(code, Path(tmp)) for name, code in (("copy", COPY), ("read", READ))}
    sms = 132  # H100 SXM; more groups than this only queue up
    for groups in (sms * 4, sms * 8, sms * 16, sms * 32):
        sink = mgr.tensor_t(np.zeros(groups * LOCAL, np.uint32), kp.TensorTypes.device)
        for name, out, moved in (("copy", dst, 2 * 4 * words), ("read", sink, 4 * words)):
            algo = mgr.algorithm([src, out], shaders[name], (groups, 1, 1), np.array([LOCAL], np.uint32),
                                 np.array([words // 4], np.uint32))
            seq = timed_sequence()
            for _ in range(reps):
                seq.record(kp.OpAlgoDispatch(algo))
            result[f"shader_{name}_GBps_{groups}x{LOCAL}"] = round(best_rate(moved * reps, seq.eval), 1)
    for name in ("copy", "read"):
        rates = [v for k, v in result.items() if k.startswith(f"shader_{name}_GBps_")]
        result[f"shader_{name}_best_GBps"] = max(rates)
    # every word was read, and the copies hold the source: the XOR of the sink words is the XOR of all
    want = int(np.bitwise_xor.reduce(data))
    result["checked"] = [xor_read(mgr, shaders["read"], t, words) == want for t in (src, dst)]
    return result


def xor_read(mgr, read_spirv: bytes, tensor, words: int) -> int:
    import kp
    sink = mgr.tensor_t(np.zeros(64 * LOCAL, np.uint32), kp.TensorTypes.device)
    algo = mgr.algorithm([tensor, sink], read_spirv, (64, 1, 1), np.array([LOCAL], np.uint32),
                         np.array([words // 4], np.uint32))
    mgr.sequence().record(kp.OpAlgoDispatch(algo)).record(kp.OpTensorSyncLocal([sink])).eval()
    return int(np.bitwise_xor.reduce(np.asarray(sink.data(), np.uint32)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=2048, help="buffer size (each of source and destination)")
    ap.add_argument("-r", "--reps", type=int, default=20, help="operations per timed run")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    nbytes = args.mib << 20
    results = {"buffer_MiB": args.mib, "reps": args.reps}
    for name, probe in (("torch", torch_copy), ("kompute", kompute)):
        try:
            results[name] = probe(nbytes, args.reps)
        except Exception as e:  # a diagnosis tool: report and go on
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        print(name, json.dumps(results[name]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
