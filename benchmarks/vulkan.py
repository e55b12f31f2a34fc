"""The GPU benchmark (issue 7), made for one call of the device tool after benchmarks/gpu/setup.sh:
correctness of the Vulkan backend on the GPU (its tests), matrix-vector GB/s per weight type
against the device's copy bandwidth, then pp512 and tg128 of each model file on our Vulkan
backend and on llama.cpp's own Vulkan build (llama-bench -ngl 99), side by side, with ratios.

    python3 benchmarks/vulkan.py --models DIR [--llama-bench PATH] [--out DIR] [--skip tests,kernels,models]

Writes vulkan-<device>-<commit>.json into --out (and prints a table last).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL_TYPES = ["Q4_0", "Q8_0", "Q4_K", "Q6_K", "Q4_1", "Q5_0", "Q5_1", "Q5_K", "F16", "F32"]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_tests(out: Path) -> dict:
    """The Vulkan backend's tests on this device (the files that need large models are not here)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/backend/vulkan",
           "-k", "not smollm2 and not gemma3_270m and not too_large and not validation"]
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    (out / "vulkan-tests.log").write_text(r.stdout + r.stderr)
    tail = (r.stdout.strip().splitlines() or ["?"])[-1]
    say(f"tests: {tail} ({time.time() - t0:.0f} s)")
    return {"command": " ".join(cmd[2:]), "exit": r.returncode, "summary": tail}


def llama_bench(binary: str, files: list[Path], repeats: int) -> list[dict]:
    cmd = [binary, "-o", "json", "-ngl", "99", "-p", "512", "-n", "128", "-r", str(repeats)]
    for f in files:
        cmd += ["-m", str(f)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        say(f"llama-bench failed ({r.returncode}): {r.stderr[-800:]}")
        return []
    return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, help="folder of .gguf files to measure")
    ap.add_argument("--llama-bench", default=None, help="llama.cpp's llama-bench built with GGML_VULKAN")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "benchmarks" / "results")))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--skip", default="", help="comma list of: tests, kernels, models, llama")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))

    from gpt4all_core.backend.vulkan.context import get_context
    from gpt4all_core.backend.vulkan.devices import list_devices
    from gpt4all_core.bench.machine import commit, machine

    ctx = get_context(0)
    result = {"benchmark": "vulkan", "commit": commit(), "machine": machine(), "device": ctx.caps.name,
              "subgroup_size": ctx.caps.subgroup_size, "devices": [d.__dict__ for d in list_devices()]}
    say(f"device 0: {ctx.caps.name}, subgroup {ctx.caps.subgroup_size}")
    if "tests" not in skip:
        result["tests"] = run_tests(args.out)
    if "kernels" not in skip:
        from gpt4all_core.bench.vulkan_kernels import run_vulkan_kernels
        result["kernels"] = run_vulkan_kernels(0, KERNEL_TYPES, mib=args.mib, progress=say)
    files = sorted(args.models.glob("*.gguf")) if args.models else []
    if files and "models" not in skip:
        from gpt4all_core.bench.model import bench_model
        rows = []
        for f in files:
            rows += bench_model(f, "vulkan:0", [1], 512, 128, args.repeats, n_batch=512, n_gpu_layers=99,
                                progress=say)
        result["ours"] = rows
    if files and args.llama_bench and "llama" not in skip:
        say("llama-bench (Vulkan, -ngl 99) on the same files")
        result["llama.cpp"] = llama_bench(args.llama_bench, files, args.repeats)
        for r in result["llama.cpp"]:
            say(f"llama.cpp {Path(r['model_filename']).name} {'pp' if r['n_prompt'] else 'tg'}: {r['avg_ts']:.1f} t/s")
    result["table"] = table(result)
    name = re.sub(r"[^A-Za-z0-9]+", "-", ctx.caps.name).strip("-")
    path = args.out / f"vulkan-{name}-{result['commit'][:7]}.json"
    path.write_text(json.dumps(result, indent=1))
    say(f"wrote {path}")
    print("\n".join(result["table"]))


def table(result: dict) -> list[str]:
    lines = []
    k = result.get("kernels")
    if k:
        lines.append(f"copy bandwidth {k['copy_bandwidth_GB_per_s']:.0f} GB/s on {result['device']}")
        lines.append("| type | matvec GB/s | of copy bandwidth | matmul GFLOP/s |")
        lines.append("|---|---|---|---|")
        for r in k["rows"]:
            lines.append(f"| {r['type']} | {r['matvec']['GB_per_s']:.0f} | {100 * r['matvec']['of_copy_bandwidth']:.0f}% "
                         f"| {r['matmul']['GFLOP_per_s']:.0f} |")
    theirs = {}
    for r in result.get("llama.cpp", []):
        theirs[(Path(r["model_filename"]).name, "pp" if r["n_prompt"] else "tg")] = r["avg_ts"]
    if result.get("ours"):
        lines.append("| file | test | ours t/s | llama.cpp Vulkan t/s | ours / llama.cpp |")
        lines.append("|---|---|---|---|---|")
        for r in result["ours"]:
            key = (Path(r["model_filename"]).name, r["test"][:2])
            other = theirs.get(key)
            ratio = f"{r['avg_ts'] / other:.2f}" if other else "-"
            lines.append(f"| {key[0]} | {r['test']} | {r['avg_ts']:.1f} | {other or '-'} | {ratio} |")
    return lines


if __name__ == "__main__":
    main()
