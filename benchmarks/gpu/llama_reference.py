"""llama.cpp's Vulkan backend on the lent GPU, the reference our Vulkan decoder is measured against:
llama-bench (built by setup.sh) over the given files, all layers on the GPU, saved as JSON with the
device facts (device_info.py), the llama.cpp source and the device line ggml-vulkan prints.

    python benchmarks/gpu/llama_reference.py MODEL.gguf... [-p 512] [-n 128] [-r 3] [--out DIR]

Writes DIR/gpu-llama.cpp-vulkan-<device>.json (DIR: benchmarks/results) and prints one line per
test: model, test, tokens/s mean and standard deviation.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from device_info import device_info, device_slug  # noqa: E402

# what setup.sh builds (keep in step with its LLAMA_* variables)
SOURCE = {"package": "llama-cpp-python 0.3.36 (sdist, vendored llama.cpp)", "llama_cpp_commit": "0c1e57098",
          "change": "instance creation without VK_EXT_layer_settings (absent from Debian 12's Vulkan headers 1.3.239)",
          "shader_compiler": "Debian 12 glslc (shaderc 2023.2): no cooperative-matrix or integer-dot-product shaders"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE.parent / "results")
    ap.add_argument("--llama-bench", default=shutil.which("llama-bench") or "llama-bench")
    args = ap.parse_args()
    cmd = [args.llama_bench]
    for m in args.models:
        cmd += ["-m", str(m)]
    cmd += ["-ngl", "99", "-p", str(args.p), "-n", str(args.n), "-r", str(args.r), "-o", "json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"llama-bench failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    rows = json.loads(proc.stdout)
    info = device_info()
    report = {"engine": "llama.cpp Vulkan (llama-bench)", "source": SOURCE, "command": " ".join(cmd),
              "wall_s": round(time.perf_counter() - started, 1),
              "ggml_vulkan": [line for line in proc.stderr.splitlines() if line.startswith("ggml_vulkan:")],
              "model_files": {m.name: m.stat().st_size for m in args.models},
              "machine": info, "date": time.strftime("%Y-%m-%d"), "results": rows,
              "env": {k: os.environ[k] for k in ("VK_DRIVER_FILES",) if k in os.environ}}
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"gpu-llama.cpp-vulkan-{device_slug(info)}.json"
    out.write_text(json.dumps(report, indent=1))
    for r in rows:
        test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
        print(f"{Path(r['model_filename']).name:34s} {r['model_type']:22s} {test:6s} "
              f"{r['avg_ts']:10.1f} ± {r['stddev_ts']:.1f} t/s")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
