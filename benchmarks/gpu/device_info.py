"""What the lent GPU machine offers, as JSON: the GPU and driver (nvidia-smi), the Vulkan device's
limits (vulkaninfo), and what gpt4all-core's Vulkan context reads through Kompute (name, subgroup
size). Run after setup.sh (its env.sh sourced); each part that fails says why instead.

    python benchmarks/gpu/device_info.py
"""
from __future__ import annotations

import json
import platform
import re
import subprocess

# vulkaninfo keys worth knowing when writing shaders (first occurrence: device 0)
VULKAN_LIMITS = ("deviceName", "driverVersion", "driverInfo", "apiVersion", "subgroupSize", "minSubgroupSize",
                 "maxSubgroupSize", "maxComputeSharedMemorySize", "maxComputeWorkGroupInvocations",
                 "maxStorageBufferRange", "maxPushConstantsSize", "timestampPeriod", "shaderInt8", "shaderFloat16",
                 "storageBuffer8BitAccess", "storageBuffer16BitAccess", "shaderIntegerDotProduct")


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout


def nvidia() -> dict:
    fields = "name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,pcie.link.gen.current"
    values = run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"]).splitlines()[0]
    return dict(zip(fields.split(","), (v.strip() for v in values.split(","))))


def vulkan() -> dict:
    text = run(["vulkaninfo"])
    found = {}
    for key in VULKAN_LIMITS:
        m = re.search(rf"^\s*{key}\s*[=:]\s*(.+?)\s*$", text, re.M)
        if m:
            found[key] = m.group(1)
    return found


def gpt4all_core_context() -> dict:
    from gpt4all_core.backend.vulkan.context import get_context
    ctx = get_context(0)
    return {"caps": vars(ctx.caps), "kompute": ctx.manager.get_device_properties()}


def device_info() -> dict:
    info: dict = {"host": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()}}
    for name, probe in (("nvidia_smi", nvidia), ("vulkaninfo", vulkan), ("gpt4all_core", gpt4all_core_context)):
        try:
            info[name] = probe()
        except Exception as e:  # report and go on: this is a diagnosis tool
            info[name] = {"error": f"{type(e).__name__}: {e}"}
    return info


def device_slug(info: dict) -> str:
    """h100-80gb-hbm3: the GPU's name for result file names."""
    name = info.get("nvidia_smi", {}).get("name") or info.get("vulkaninfo", {}).get("deviceName") or "unknown"
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-")


if __name__ == "__main__":
    print(json.dumps(device_info(), indent=1, default=str))
