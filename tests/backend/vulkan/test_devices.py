"""Vulkan device listing and selection: the ctypes structures against vulkan_core.h, the real listing
against vulkaninfo, a missing loader, and select_device / list_gpus / check_fits on hand-made device
lists covering every request form and every refusal (each message names the devices there are)."""
from __future__ import annotations

import ctypes
import os
import re
import subprocess
from pathlib import Path

import pytest
from fake_devices import GiB, LAVAPIPE, fake, lavapipe, use_devices

from gpt4all_core.backend.vulkan import devices
from gpt4all_core.backend.vulkan.context import VulkanError
from gpt4all_core.errors import DeviceError, GPT4AllCoreError

# libvulkan-dev, which dev.sh installs (benchmarks/gpu/setup.sh elsewhere, with VULKAN_INCLUDE_DIR)
HEADER = Path(os.environ.get("VULKAN_INCLUDE_DIR", "/usr/include")) / "vulkan" / "vulkan_core.h"

# ---- the structures, member by member, against the header ----

SCALARS = {"uint32_t": ctypes.c_uint32, "int32_t": ctypes.c_int32, "float": ctypes.c_float, "VkBool32": ctypes.c_uint32,
           "VkDeviceSize": ctypes.c_uint64, "uint64_t": ctypes.c_uint64, "size_t": ctypes.c_size_t,
           "char": ctypes.c_char, "uint8_t": ctypes.c_uint8}


def header_struct(text: str, name: str, made: dict) -> type[ctypes.Structure]:
    """A ctypes structure built from the header's own definition of `name`."""
    if name in made:
        return made[name]
    body = re.search(rf"typedef struct {name} {{(.*?)}} {name};", text, re.S)[1]
    fields = []
    for line in body.strip().splitlines():
        m = re.fullmatch(r"\s*(?:const\s+)?(\w+)\s*(\*?)\s*(?:const\s*\*\s*)?(\w+)(?:\[(\w+)\])?;", line)
        ctype_name, pointer, member, count = m.groups()
        if pointer or "*" in line:
            ctype = ctypes.c_void_p
        elif ctype_name in SCALARS:
            ctype = SCALARS[ctype_name]
        elif ctype_name.endswith("Flags") or re.search(rf"typedef enum {ctype_name} ", text):
            ctype = ctypes.c_uint32 if ctype_name.endswith("Flags") else ctypes.c_int32
        else:
            ctype = header_struct(text, ctype_name, made)
        if count:
            n = int(count) if count.isdigit() else int(re.search(rf"#define {count}\s+(\d+)U", text)[1])
            ctype = ctype * n
        fields.append((member, ctype))
    made[name] = type(name, (ctypes.Structure,), {"_fields_": fields})
    return made[name]


def layout(struct) -> list[tuple[str, int, int]]:
    return [(name, getattr(struct, name).offset, getattr(struct, name).size) for name, _ in struct._fields_]


@pytest.mark.parametrize("name", ["VkApplicationInfo", "VkInstanceCreateInfo", "VkPhysicalDeviceLimits",
                                  "VkPhysicalDeviceSparseProperties", "VkPhysicalDeviceProperties",
                                  "VkPhysicalDeviceProperties2", "VkPhysicalDeviceSubgroupProperties", "VkMemoryType",
                                  "VkMemoryHeap", "VkPhysicalDeviceMemoryProperties"])
def test_structures_match_the_header(name):
    text = HEADER.read_text()
    theirs, ours = header_struct(text, name, {}), getattr(devices, name)
    assert layout(ours) == layout(theirs) and ctypes.sizeof(ours) == ctypes.sizeof(theirs)


def test_constants_match_the_header():
    text = HEADER.read_text()

    def value(name):
        return int(re.search(rf"\b{name} = (0x[0-9A-Fa-f]+|\d+)", text)[1], 0)
    assert devices.STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2 == value("VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2")
    assert devices.STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES == \
        value("VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES")
    assert devices.SHADER_STAGE_COMPUTE_BIT == value("VK_SHADER_STAGE_COMPUTE_BIT")
    assert devices.MEMORY_HEAP_DEVICE_LOCAL_BIT == value("VK_MEMORY_HEAP_DEVICE_LOCAL_BIT")
    for bit, op in enumerate(devices.SUBGROUP_OPERATIONS):
        vendor = "_NV" if op == "partitioned" else ""
        assert value(f"VK_SUBGROUP_FEATURE_{op.upper()}_BIT{vendor}") == 1 << bit
    for number, kind in devices.DEVICE_TYPES.items():
        suffix = {"integrated": "INTEGRATED_GPU", "discrete": "DISCRETE_GPU", "virtual": "VIRTUAL_GPU"}.get(kind, kind)
        assert value(f"VK_PHYSICAL_DEVICE_TYPE_{suffix.upper()}") == number


# ---- the real listing against vulkaninfo ----

def vulkaninfo(*args: str) -> str:
    return subprocess.run(["vulkaninfo", *args], capture_output=True, text=True, check=True).stdout


def per_gpu(text: str, start: str) -> list[str]:
    """The text of each GPU<n>: block after the line `start`, in order."""
    blocks = re.split(r"^GPU(\d+):$", text.split(start, 1)[1], flags=re.M)
    assert [int(n) for n in blocks[1::2]] == list(range(len(blocks) // 2))
    return blocks[2::2]


def test_listing_matches_vulkaninfo():
    listed = devices.probe()[0]
    summaries = per_gpu(vulkaninfo("--summary"), "Devices:")
    fulls = per_gpu(vulkaninfo(), "Device Properties and Extensions:")
    assert len(listed) == len(summaries) == len(fulls) >= 1
    for d, summary, full in zip(listed, summaries, fulls):
        s = dict(re.findall(r"^\s*(\w+)\s*=\s*(.*?)\s*$", summary, re.M))
        assert d.name.startswith(s["deviceName"]) and d.api_version == s["apiVersion"]
        assert d.vendor_id == int(s["vendorID"], 16)
        # decoded from the same number; vulkaninfo 1.3.239 prints NVIDIA's last field unmasked
        # (580.159.4.256 for driver 580.159.04: the 4 << 6 of the third field again)
        raw = int(re.search(r"^\s*driverVersion\s*=\s*\S+\s*\((\d+)\)", full, re.M)[1])
        assert d.driver_version == devices.driver_version_string(d.vendor_id, raw)
        if d.vendor_id != 0x10DE:
            assert d.driver_version == s["driverVersion"]
        assert d.device_id == int(s["deviceID"], 16)
        assert s["deviceType"] == "PHYSICAL_DEVICE_TYPE_" + {"integrated": "INTEGRATED_GPU", "discrete": "DISCRETE_GPU",
                                                             "virtual": "VIRTUAL_GPU"}.get(d.type, d.type.upper())

        def number(key):
            return int(re.search(rf"^\s*{key}\s*=\s*(\d+)", full, re.M)[1])
        assert d.max_storage_buffer_range == number("maxStorageBufferRange")
        assert d.max_compute_shared_memory == number("maxComputeSharedMemorySize")
        assert d.max_workgroup_invocations == number("maxComputeWorkGroupInvocations")
        assert d.subgroup_size == number("subgroupSize")
        assert d.timestamp_period_ns == float(re.search(r"^\s*timestampPeriod\s*=\s*([\d.e+-]+)", full, re.M)[1])
        counts = re.search(r"maxComputeWorkGroupCount: count = 3\s+(\d+)\s+(\d+)\s+(\d+)", full)
        assert d.max_workgroup_count == tuple(int(c) for c in counts.groups())
        ops = re.search(r"supportedOperations: count = (\d+)\n((?:\s+SUBGROUP_FEATURE_\w+\n)+)", full)
        assert d.subgroup_operations == tuple(op.lower() for op in re.findall(r"SUBGROUP_FEATURE_(\w+)_BIT", ops[2]))
        stages = re.search(r"supportedStages: count = \d+\n((?:\s+SHADER_STAGE_\w+\n)+)", full)[1]
        assert d.subgroup_compute == ("SHADER_STAGE_COMPUTE_BIT" in stages)
        heaps = re.findall(r"memoryHeaps\[\d+\]:\s+size\s+=\s+(\d+).*?\n\s+flags:(.*?)(?=memoryHeaps\[|memoryTypes:)",
                           full, re.S)
        local = [int(size) for size, flags in heaps if "MEMORY_HEAP_DEVICE_LOCAL_BIT" in flags]
        assert d.device_local_bytes == max(local) > 0


def test_lavapipe_is_listed_as_a_cpu_device():
    """dev.sh installs Mesa's lavapipe everywhere the tests run: it is there, as vulkaninfo says."""
    (lvp,) = [d for d in devices.list_devices() if d.name.startswith("llvmpipe")]
    assert (lvp.type, lvp.vendor_id, lvp.vendor, lvp.subgroup_size) == ("cpu", 0x10005, "0x10005", 8)
    assert lvp.problem() is None and "arithmetic" in lvp.subgroup_operations
    assert devices.select_device(f"kompute:{lvp.name}") == lvp == devices.select_device(f"vulkan:{lvp.index}")
    assert devices.device_info(lvp.index) == lvp and f"kompute:{lvp.name}" not in devices.list_gpus()


def test_listing_is_read_once(monkeypatch):
    calls = []
    monkeypatch.setattr(devices, "_cache", None)
    monkeypatch.setattr(devices, "probe", lambda: calls.append(1) or ([lavapipe()], None))
    assert devices.list_devices() == devices.list_devices() == [lavapipe()] and calls == [1]


def test_no_loader_lists_nothing(monkeypatch):
    monkeypatch.setattr(devices, "_load_loader", lambda: None)
    found, problem = devices.probe()
    assert found == [] and "no Vulkan loader (libvulkan.so.1)" in problem
    monkeypatch.setattr(devices, "_cache", None)
    assert devices.list_devices() == [] and devices.list_gpus() == []
    assert devices.select_device("cpu") is None
    with pytest.raises(DeviceError, match=r"device 'gpu': no GPU among the Vulkan devices\. no Vulkan loader"):
        devices.select_device("gpu")


def test_repeated_names_are_numbered_as_gpt4all_does():
    same = [fake(0, "Radeon"), fake(1, "Arc"), fake(2, "Radeon"), fake(3, "Radeon")]
    assert [d.name for d in devices._unique_names(same)] == ["Radeon", "Arc", "Radeon (2)", "Radeon (3)"]


# ---- selection on hand-made lists ----

H100 = fake(1, "NVIDIA H100 80GB HBM3", memory=80 * GiB)
RTX = fake(2, "NVIDIA GeForce RTX 3060", memory=12 * GiB)
RADEON = fake(3, "AMD Radeon RX 7900 XTX (RADV NAVI31)", vendor_id=0x1002, memory=24 * GiB, subgroup=64)
IRIS = fake(4, "Intel(R) Iris(R) Xe Graphics", "integrated", 0x8086, memory=48 * GiB, subgroup=16)
VIRGL = fake(5, "Virtio-GPU Venus", "virtual", 0x1AF4, memory=64 * GiB)
MANY = [lavapipe(0), H100, RTX, RADEON, IRIS, VIRGL]


@pytest.mark.parametrize("request_, expected", [
    (None, None), ("cpu", None), (" CPU ", None),
    ("gpu", H100), ("GPU", H100), ("kompute", H100), ("vulkan", H100), ("kompute:gpu", H100),
    ("nvidia", H100), ("kompute:nvidia", H100), ("amd", RADEON), ("intel", IRIS),
    ("NVIDIA GeForce RTX 3060", RTX), ("kompute:NVIDIA GeForce RTX 3060", RTX),
    ("vulkan:2", RTX), ("kompute:3", RADEON), ("vulkan:5", VIRGL),
    (f"kompute:{LAVAPIPE}", lavapipe(0)), ("vulkan:0", lavapipe(0)), (LAVAPIPE, lavapipe(0)),
])
def test_every_request_form(monkeypatch, request_, expected):
    use_devices(monkeypatch, MANY)
    assert devices.select_device(request_) == expected


def test_gpu_prefers_type_then_memory(monkeypatch):
    big_lavapipe = fake(0, LAVAPIPE, "cpu", 0x10005, 512 * GiB, subgroup=8)
    for listed, best in (([big_lavapipe, IRIS, RTX], RTX),          # discrete over integrated over cpu
                         ([big_lavapipe, VIRGL, IRIS], IRIS),       # integrated over virtual, whatever the memory
                         ([big_lavapipe, VIRGL], VIRGL),
                         ([RTX, H100, RADEON], H100)):              # then the most memory
        use_devices(monkeypatch, listed)
        assert devices.select_device("gpu") == best
    use_devices(monkeypatch, [RTX, fake(7, "NVIDIA A100", memory=40 * GiB)])
    assert devices.select_device("nvidia").name == "NVIDIA A100"


def expect_refusal(request: str, *needles: str) -> str:
    with pytest.raises(DeviceError) as e:
        devices.select_device(request)
    message = str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, GPT4AllCoreError)
    assert message.startswith(f"device {request!r}") or request in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def test_lavapipe_only_refuses_gpu_and_vendors_but_runs_when_named(monkeypatch):
    use_devices(monkeypatch, [lavapipe(0)])
    listing = f"vulkan:0 {LAVAPIPE} (cpu, 2.00 GiB, subgroup 8)"
    expect_refusal("gpu", "no GPU among the Vulkan devices", "CPU implementation of Vulkan, used only when named",
                   f"device='kompute:{LAVAPIPE}' or 'vulkan:0'", listing)
    expect_refusal("kompute", "no GPU", listing)
    expect_refusal("nvidia", "no NVIDIA GPU among the Vulkan devices", listing)
    expect_refusal("amd", "no AMD GPU", listing)
    expect_refusal("intel", "no Intel GPU", listing)
    assert devices.list_gpus() == []
    assert devices.select_device(f"kompute:{LAVAPIPE}") == devices.select_device("vulkan:0") == lavapipe(0)


def test_refusals_name_the_request_and_list_the_devices(monkeypatch):
    use_devices(monkeypatch, [lavapipe(0), RTX])
    listing = ["vulkan:0 llvmpipe (LLVM 15.0.6, 256 bits) (cpu, 2.00 GiB, subgroup 8)",
               "vulkan:2 NVIDIA GeForce RTX 3060 (discrete, 12.00 GiB, subgroup 32)"]
    expect_refusal("amd", "no AMD GPU among the Vulkan devices", *listing)
    expect_refusal("vulkan:7", "there is no Vulkan device 7", *listing)
    message = expect_refusal("tpu", "no Vulkan device is named 'tpu'", "'cpu', 'gpu', 'kompute', 'nvidia', 'amd', "
                             "'intel', 'kompute:<device name>', 'vulkan:<index>'", "GPT4All.list_gpus()", *listing)
    assert message.count("\n  vulkan:") == 2
    expect_refusal("kompute:nvidia geforce rtx 3060", "no Vulkan device is named 'nvidia geforce rtx 3060'")  # exact
    expect_refusal("", "no Vulkan device is named ''")
    for cuda in ("cuda", "cuda:NVIDIA GeForce RTX 3060", "CUDA"):
        expect_refusal(cuda, "this build has no CUDA backend", "device='kompute'")
    expect_refusal("metal", "no Metal backend")
    with pytest.raises(DeviceError, match="device must be a string or None, not int"):
        devices.select_device(0)


def test_no_device_says_so(monkeypatch):
    use_devices(monkeypatch, [], "the Vulkan loader found no device")
    expect_refusal("gpu", "no GPU among the Vulkan devices. the Vulkan loader found no device; use device='cpu'")
    expect_refusal("vulkan:0", "there is no Vulkan device 0", "found no device")
    assert devices.select_device("cpu") is None


def test_devices_without_subgroup_arithmetic_are_listed_but_refused(monkeypatch):
    no_arith = fake(1, "Old GPU", ops=("basic", "vote", "ballot", "shuffle"))
    no_compute = fake(2, "Fragment-only GPU", compute=False)
    vk10 = fake(3, "Vulkan 1.0 GPU", api="1.0.61", subgroup=0, ops=(), compute=False)
    use_devices(monkeypatch, [no_arith, no_compute, vk10])
    unusable = "cannot run the Vulkan backend"
    expect_refusal("gpu", "Old GPU cannot run", "lacks subgroup arithmetic operations",
                   "vulkan:2 Fragment-only GPU (discrete, 8.00 GiB, subgroup 32): unusable, it has no subgroup "
                   "operations in compute shaders", "vulkan:3 Vulkan 1.0 GPU", "Vulkan 1.0.61 only")
    expect_refusal("Fragment-only GPU", unusable, "no subgroup operations in compute shaders")
    expect_refusal("vulkan:3", unusable, "supports Vulkan 1.0.61 only (the shaders need 1.1)")
    assert devices.list_gpus() == []
    use_devices(monkeypatch, [fake(1, "No-shuffle GPU", ops=("basic", "vote", "arithmetic", "ballot"))])
    expect_refusal("gpu", "No-shuffle GPU cannot run", "lacks subgroup shuffle operations")
    use_devices(monkeypatch, [no_arith, IRIS])  # a usable integrated GPU wins over an unusable discrete one
    assert devices.select_device("gpu") == IRIS and devices.list_gpus() == [f"kompute:{IRIS.name}"]


def test_list_gpus_names_as_gpt4all_best_first(monkeypatch):
    use_devices(monkeypatch, MANY)
    names = ["NVIDIA H100 80GB HBM3", "AMD Radeon RX 7900 XTX (RADV NAVI31)", "NVIDIA GeForce RTX 3060",
             "Intel(R) Iris(R) Xe Graphics", "Virtio-GPU Venus"]
    assert devices.list_gpus() == [f"kompute:{n}" for n in names]
    assert devices.list_gpus(mem_required=30 * GiB) == [f"kompute:{n}" for n in (names[0], names[3], names[4])]
    for entry in devices.list_gpus():  # each entry is itself a valid request for that device
        assert devices.select_device(entry).name == entry.removeprefix("kompute:")


# ---- memory, versions ----

def test_check_fits():
    devices.check_fits(RTX, 12 * GiB, "the weights")
    with pytest.raises(VulkanError) as e:
        devices.check_fits(RTX, 12 * GiB + 1, "the model's weights")
    assert str(e.value) == ("the model's weights need 12.00 GiB of device memory, but NVIDIA GeForce RTX 3060 has "
                            "12.00 GiB: put fewer blocks on it (a smaller ngl) or use device='cpu'")
    with pytest.raises(VulkanError, match=r"need 300\.0 MiB .* has 256\.0 MiB: .*ngl.*device='cpu'"):
        devices.check_fits(fake(0, "small", memory=256 << 20), 300 << 20, "the KV cache")


def test_versions_decode_as_vulkaninfo_does():
    assert devices.version_string(devices.make_api_version(1, 3, 230)) == "1.3.230"
    nvidia = (535 << 22) | (104 << 14) | (5 << 6) | 3
    assert devices.driver_version_string(0x10DE, nvidia) == "535.104.5.3"
    assert devices.driver_version_string(0x1002, devices.make_api_version(2, 0, 279)) == "2.0.279"
    assert devices.driver_version_string(0x10005, devices.make_api_version(0, 0, 1)) == "0.0.1"
