"""The devices a benchmark can run on. Only the CPU exists today."""
from __future__ import annotations

from gpt4all_core.errors import GPT4AllCoreError


class BenchError(GPT4AllCoreError, ValueError):
    """A benchmark cannot run as asked (unknown device, nothing to compare with, bad result file)."""


AVAILABLE = ("cpu",)


def parse_devices(spec: str) -> list[str]:
    """`cpu,vulkan:0` -> ["cpu", "vulkan:0"], each checked to exist; BenchError naming the first that does not."""
    devices = [d.strip().lower() for d in spec.split(",") if d.strip()]
    if not devices:
        raise BenchError("--device: no device given (available: " + ", ".join(AVAILABLE) + ")")
    for d in devices:
        if d not in AVAILABLE:
            why = (" (there is no Vulkan backend yet)" if d.split(":", 1)[0] in ("vulkan", "gpu", "kompute")
                   else "")
            raise BenchError(f"--device: unknown device {d!r}{why}; available devices: {', '.join(AVAILABLE)}")
    return list(dict.fromkeys(devices))


def describe(device: str) -> dict:
    """Row fields for a device: its name, backend and SIMD level."""
    from gpt4all_core.backend import cpu_kernels as ck
    from gpt4all_core.bench.machine import cpu_name

    return {"device": device, "device_name": cpu_name(), "backends": "CPU", "simd": ck.simd_level()}
