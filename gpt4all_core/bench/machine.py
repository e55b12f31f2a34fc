"""What every benchmark result records about where it ran: CPU, SIMD level, commit, versions."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout (an editable install points here)


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or platform.machine())


def cpu_flags() -> list[str]:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
    return next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])


def commit() -> str:
    """The short commit of the checkout, "-dirty" when code (not benchmark results) changed; "unknown"
    outside a git checkout. GPT4ALL_CORE_COMMIT, when set, names it instead (a copy of the tree
    whose .git is not its own, as the GPU machine of benchmarks/gpu/ gets)."""
    if os.environ.get("GPT4ALL_CORE_COMMIT"):
        return os.environ["GPT4ALL_CORE_COMMIT"]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10)
        if rev.returncode:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!benchmarks/results"], cwd=REPO, capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict:
    from gpt4all_core.backend import cpu_kernels as ck

    try:
        import llama_cpp
        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    import numpy

    return {"cpu": cpu_name(), "cores_visible": os.cpu_count(), "physical_cores": ck.physical_cores(),
            "simd": ck.simd_level(), "avx512_vnni": "avx512_vnni" in cpu_flags(),
            "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "commit": commit(), "python": platform.python_version(), "numpy": numpy.__version__,
            "llama_cpp_python": llama_version, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
