"""The devices a benchmark can run on: the CPU, and Vulkan devices named as GPT4All(device=...)
names them (vulkan:<index>, kompute:<name>, gpu, nvidia, ...), each resolved to vulkan:<index>."""
from __future__ import annotations

import re

from gpt4all_core.errors import DeviceError, GPT4AllCoreError


class BenchError(GPT4AllCoreError, ValueError):
    """A benchmark cannot run as asked (unknown device, nothing to compare with, bad result file)."""


# a comma starts a new device only before a device form: names such as "llvmpipe (LLVM 15.0.6, 256 bits)" hold commas
_SPLIT = re.compile(r",(?=\s*(?:cpu|gpu|kompute|vulkan|nvidia|amd|intel|cuda|metal)\b)", re.IGNORECASE)


def split_devices(spec: str) -> list[str]:
    """`cpu,vulkan:0,kompute:llvmpipe (LLVM 15.0.6, 256 bits)` -> its three device requests."""
    return [d.strip(", \t") for d in _SPLIT.split(spec) if d.strip(", \t")]


def parse_devices(spec: str) -> list[str]:
    """The devices of a --device list: "cpu" and "vulkan:<index>" for each Vulkan request, each checked
    to name a device that can run (BenchError naming the first that does not), repeats dropped."""
    from gpt4all_core.backend.vulkan.devices import select_device

    requests = split_devices(spec)
    if not requests:
        raise BenchError("--device: no device given (cpu, vulkan:<index>, kompute:<name>, gpu, nvidia, amd, intel)")
    devices = []
    for r in requests:
        try:
            info = select_device(r)
        except DeviceError as e:
            raise BenchError(f"--device: {e}") from None
        devices.append("cpu" if info is None else f"vulkan:{info.index}")
    return list(dict.fromkeys(devices))


def vulkan_device(device: str):
    """The DeviceInfo of a parsed "vulkan:<index>", None for "cpu"."""
    from gpt4all_core.backend.vulkan.devices import select_device
    return None if device == "cpu" else select_device(device)


def describe(device: str) -> dict:
    """Row fields for a device: its name, driver version (Vulkan; empty for the CPU), backend
    (llama-bench's names) and the CPU's SIMD level."""
    from gpt4all_core.backend import cpu_kernels as ck
    from gpt4all_core.bench.machine import cpu_name

    info = vulkan_device(device)
    name, driver, backend = (cpu_name(), "", "CPU") if info is None else (info.name, info.driver_version, "Vulkan")
    return {"device": device, "device_name": name, "driver": driver, "backends": backend, "simd": ck.simd_level()}
