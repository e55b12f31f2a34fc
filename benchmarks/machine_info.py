"""What every benchmark result records about where it ran: CPU, SIMD level, commit, versions."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import llama_cpp

    from gpt4all_core.backend import cpu_kernels as ck
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    return {"cpu": cpu, "cores_visible": os.cpu_count(), "simd": ck.simd_level(), "commit": commit,
            "llama_cpp_python": llama_cpp.__version__, "python": platform.python_version()}
