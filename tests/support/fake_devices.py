"""Hand-made Vulkan device lists for the device-selection tests: fake(...) builds a DeviceInfo,
use_devices(monkeypatch, [...]) makes them the process's listing (select_device, list_gpus, the API)."""
from __future__ import annotations

from gpt4all_core.backend.vulkan import devices

GiB = 1 << 30
LAVAPIPE = "llvmpipe (LLVM 15.0.6, 256 bits)"
ALL_OPS = ("basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "quad")


def fake(index: int, name: str, type: str = "discrete", vendor_id: int = 0x10DE, memory: int = 8 * GiB,
         subgroup: int = 32, ops: tuple[str, ...] = ALL_OPS, compute: bool = True, api: str = "1.3.260"):
    return devices.DeviceInfo(
        index=index, name=name, type=type, vendor=devices.VENDORS.get(vendor_id, f"{vendor_id:#x}"),
        vendor_id=vendor_id, device_id=0x1234, driver_version="1.0.0", api_version=api, device_local_bytes=memory,
        subgroup_size=subgroup, subgroup_operations=ops, subgroup_compute=compute,
        max_storage_buffer_range=1 << 30, max_compute_shared_memory=48 << 10, max_workgroup_invocations=1024,
        max_workgroup_count=(65535, 65535, 65535))


def lavapipe(index: int = 0):
    return fake(index, LAVAPIPE, "cpu", 0x10005, 2 * GiB, subgroup=8)


def use_devices(monkeypatch, listed: list, problem: str | None = None) -> None:
    monkeypatch.setattr(devices, "listing", lambda: (list(listed), problem if not listed else None))
