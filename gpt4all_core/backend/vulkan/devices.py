"""The Vulkan devices there are, and how a device request picks one, as the `gpt4all` package does.

Listing goes straight to the Vulkan loader (libvulkan.so.1) through ctypes, not through Kompute, so
it works where kp is missing: one instance (Vulkan 1.1), each physical device's properties (with
its subgroup properties chained), limits and memory heaps, then the instance is destroyed. The
order is vkEnumeratePhysicalDevices', which is Kompute's device index: kp.Manager(info.index).

Requests (GPT4All(device=...), gpt4all 2.8.x semantics):
    None, "cpu"                      the CPU
    "gpu", "kompute"                 the best GPU: discrete > integrated > virtual, then the most
                                     device-local memory
    "nvidia", "amd", "intel"         the best GPU of that vendor
    "kompute:<name>", "<name>"       the device of that exact name (as list_gpus() gives them)
    "vulkan:<index>", "kompute:<i>"  the device of that index
    "cuda", "cuda:<name>"            refused: this build has no CUDA backend
A CPU-type Vulkan device (Mesa's lavapipe) is never picked by "gpu" or a vendor: it runs only
when named, so CI can use it but a user without a GPU is not put on a slow software device.
"""
from __future__ import annotations

import ctypes
import re
import sys
import threading
from dataclasses import dataclass, replace

from gpt4all_core.backend.vulkan.context import VulkanError
from gpt4all_core.errors import DeviceError

# ---- the Vulkan structures we read (layouts as in vulkan_core.h; tests/backend/vulkan checks them) ----

U8, U32, I32, U64, F32, SIZE = (ctypes.c_uint8, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64, ctypes.c_float,
                                ctypes.c_size_t)


def _fields(*runs):
    """ctypes _fields_ from runs of (type, "name name[3] ..."): the header's members in order."""
    out = []
    for ctype, names in runs:
        for name in names.split():
            m = re.fullmatch(r"(\w+)\[(\d+)\]", name)
            out.append((m[1], ctype * int(m[2])) if m else (name, ctype))
    return out


class VkApplicationInfo(ctypes.Structure):
    _fields_ = [("sType", I32), ("pNext", ctypes.c_void_p), ("pApplicationName", ctypes.c_char_p),
                ("applicationVersion", U32), ("pEngineName", ctypes.c_char_p), ("engineVersion", U32),
                ("apiVersion", U32)]


class VkInstanceCreateInfo(ctypes.Structure):
    _fields_ = [("sType", I32), ("pNext", ctypes.c_void_p), ("flags", U32),
                ("pApplicationInfo", ctypes.POINTER(VkApplicationInfo)), ("enabledLayerCount", U32),
                ("ppEnabledLayerNames", ctypes.POINTER(ctypes.c_char_p)), ("enabledExtensionCount", U32),
                ("ppEnabledExtensionNames", ctypes.POINTER(ctypes.c_char_p))]


class VkPhysicalDeviceLimits(ctypes.Structure):
    _fields_ = _fields(
        (U32, "maxImageDimension1D maxImageDimension2D maxImageDimension3D maxImageDimensionCube "
              "maxImageArrayLayers maxTexelBufferElements maxUniformBufferRange maxStorageBufferRange "
              "maxPushConstantsSize maxMemoryAllocationCount maxSamplerAllocationCount"),
        (U64, "bufferImageGranularity sparseAddressSpaceSize"),
        (U32, "maxBoundDescriptorSets maxPerStageDescriptorSamplers maxPerStageDescriptorUniformBuffers "
              "maxPerStageDescriptorStorageBuffers maxPerStageDescriptorSampledImages "
              "maxPerStageDescriptorStorageImages maxPerStageDescriptorInputAttachments maxPerStageResources "
              "maxDescriptorSetSamplers maxDescriptorSetUniformBuffers maxDescriptorSetUniformBuffersDynamic "
              "maxDescriptorSetStorageBuffers maxDescriptorSetStorageBuffersDynamic maxDescriptorSetSampledImages "
              "maxDescriptorSetStorageImages maxDescriptorSetInputAttachments maxVertexInputAttributes "
              "maxVertexInputBindings maxVertexInputAttributeOffset maxVertexInputBindingStride "
              "maxVertexOutputComponents maxTessellationGenerationLevel maxTessellationPatchSize "
              "maxTessellationControlPerVertexInputComponents maxTessellationControlPerVertexOutputComponents "
              "maxTessellationControlPerPatchOutputComponents maxTessellationControlTotalOutputComponents "
              "maxTessellationEvaluationInputComponents maxTessellationEvaluationOutputComponents "
              "maxGeometryShaderInvocations maxGeometryInputComponents maxGeometryOutputComponents "
              "maxGeometryOutputVertices maxGeometryTotalOutputComponents maxFragmentInputComponents "
              "maxFragmentOutputAttachments maxFragmentDualSrcAttachments maxFragmentCombinedOutputResources "
              "maxComputeSharedMemorySize maxComputeWorkGroupCount[3] maxComputeWorkGroupInvocations "
              "maxComputeWorkGroupSize[3] subPixelPrecisionBits subTexelPrecisionBits mipmapPrecisionBits "
              "maxDrawIndexedIndexValue maxDrawIndirectCount"),
        (F32, "maxSamplerLodBias maxSamplerAnisotropy"),
        (U32, "maxViewports maxViewportDimensions[2]"),
        (F32, "viewportBoundsRange[2]"),
        (U32, "viewportSubPixelBits"),
        (SIZE, "minMemoryMapAlignment"),
        (U64, "minTexelBufferOffsetAlignment minUniformBufferOffsetAlignment minStorageBufferOffsetAlignment"),
        (I32, "minTexelOffset"), (U32, "maxTexelOffset"), (I32, "minTexelGatherOffset"), (U32, "maxTexelGatherOffset"),
        (F32, "minInterpolationOffset maxInterpolationOffset"),
        (U32, "subPixelInterpolationOffsetBits maxFramebufferWidth maxFramebufferHeight maxFramebufferLayers "
              "framebufferColorSampleCounts framebufferDepthSampleCounts framebufferStencilSampleCounts "
              "framebufferNoAttachmentsSampleCounts maxColorAttachments sampledImageColorSampleCounts "
              "sampledImageIntegerSampleCounts sampledImageDepthSampleCounts sampledImageStencilSampleCounts "
              "storageImageSampleCounts maxSampleMaskWords timestampComputeAndGraphics"),
        (F32, "timestampPeriod"),
        (U32, "maxClipDistances maxCullDistances maxCombinedClipAndCullDistances discreteQueuePriorities"),
        (F32, "pointSizeRange[2] lineWidthRange[2] pointSizeGranularity lineWidthGranularity"),
        (U32, "strictLines standardSampleLocations"),
        (U64, "optimalBufferCopyOffsetAlignment optimalBufferCopyRowPitchAlignment nonCoherentAtomSize"),
    )


class VkPhysicalDeviceSparseProperties(ctypes.Structure):
    _fields_ = _fields((U32, "residencyStandard2DBlockShape residencyStandard2DMultisampleBlockShape "
                             "residencyStandard3DBlockShape residencyAlignedMipSize residencyNonResidentStrict"))


class VkPhysicalDeviceProperties(ctypes.Structure):
    _fields_ = _fields((U32, "apiVersion driverVersion vendorID deviceID"), (I32, "deviceType"),
                       (ctypes.c_char, "deviceName[256]"), (U8, "pipelineCacheUUID[16]")) + [
        ("limits", VkPhysicalDeviceLimits), ("sparseProperties", VkPhysicalDeviceSparseProperties)]


class VkPhysicalDeviceProperties2(ctypes.Structure):
    _fields_ = [("sType", I32), ("pNext", ctypes.c_void_p), ("properties", VkPhysicalDeviceProperties)]


class VkPhysicalDeviceSubgroupProperties(ctypes.Structure):
    _fields_ = [("sType", I32), ("pNext", ctypes.c_void_p), ("subgroupSize", U32), ("supportedStages", U32),
                ("supportedOperations", U32), ("quadOperationsInAllStages", U32)]


class VkMemoryType(ctypes.Structure):
    _fields_ = [("propertyFlags", U32), ("heapIndex", U32)]


class VkMemoryHeap(ctypes.Structure):
    _fields_ = [("size", U64), ("flags", U32)]


class VkPhysicalDeviceMemoryProperties(ctypes.Structure):
    _fields_ = [("memoryTypeCount", U32), ("memoryTypes", VkMemoryType * 32), ("memoryHeapCount", U32),
                ("memoryHeaps", VkMemoryHeap * 16)]


STRUCTURE_TYPE_APPLICATION_INFO = 0
STRUCTURE_TYPE_INSTANCE_CREATE_INFO = 1
STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2 = 1000059001
STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES = 1000094000
MEMORY_HEAP_DEVICE_LOCAL_BIT = 0x1
SHADER_STAGE_COMPUTE_BIT = 0x20
# bit i of supportedOperations; bit 8 is VK_SUBGROUP_FEATURE_PARTITIONED_BIT_NV (NVIDIA GPUs report it)
SUBGROUP_OPERATIONS = ("basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "clustered", "quad",
                       "partitioned")
DEVICE_TYPES = {0: "other", 1: "integrated", 2: "discrete", 3: "virtual", 4: "cpu"}
VENDORS = {0x10DE: "nvidia", 0x1002: "amd", 0x8086: "intel"}
RESULTS = {-1: "VK_ERROR_OUT_OF_HOST_MEMORY", -2: "VK_ERROR_OUT_OF_DEVICE_MEMORY", -3: "VK_ERROR_INITIALIZATION_FAILED",
           -6: "VK_ERROR_LAYER_NOT_PRESENT", -7: "VK_ERROR_EXTENSION_NOT_PRESENT", -9: "VK_ERROR_INCOMPATIBLE_DRIVER"}


def make_api_version(major: int, minor: int, patch: int = 0) -> int:
    return (major << 22) | (minor << 12) | patch


def version_string(v: int) -> str:
    """An API version (VK_API_VERSION_*) as major.minor.patch."""
    return f"{(v >> 22) & 0x7F}.{(v >> 12) & 0x3FF}.{v & 0xFFF}"


def driver_version_string(vendor_id: int, v: int) -> str:
    """driverVersion as vulkaninfo prints it: NVIDIA packs 10.8.8.6 bits, Intel's Windows driver 18.14
    bits, the others (Mesa, AMD, Intel on Linux) use the API version encoding."""
    if vendor_id == 0x10DE:
        return f"{(v >> 22) & 0x3FF}.{(v >> 14) & 0xFF}.{(v >> 6) & 0xFF}.{v & 0x3F}"
    if vendor_id == 0x8086 and sys.platform == "win32":
        return f"{v >> 14}.{v & 0x3FFF}"
    return version_string(v)


@dataclass(frozen=True)
class DeviceInfo:
    """One Vulkan physical device. index: its place in vkEnumeratePhysicalDevices (kp.Manager(index));
    name: deviceName, with " (2)", " (3)"... added to repeats as gpt4all names them; type: "discrete",
    "integrated", "virtual", "cpu" or "other"; vendor: "nvidia", "amd", "intel" or the vendor id in
    hex; device_local_bytes: the largest device-local memory heap; subgroup_operations: the
    VK_SUBGROUP_FEATURE names, subgroup_compute whether compute shaders have them."""
    index: int
    name: str
    type: str
    vendor: str
    vendor_id: int
    device_id: int
    driver_version: str
    api_version: str
    device_local_bytes: int
    subgroup_size: int
    subgroup_operations: tuple[str, ...]
    subgroup_compute: bool
    max_storage_buffer_range: int
    max_compute_shared_memory: int
    max_workgroup_invocations: int
    max_workgroup_count: tuple[int, int, int]
    timestamp_period_ns: float = 1.0  # nanoseconds per tick of a timestamp query

    def problem(self) -> str | None:
        """Why the backend's shaders cannot run on this device, or None."""
        if self.api_version.split(".")[:2] == ["1", "0"]:
            return f"it supports Vulkan {self.api_version} only (the shaders need 1.1)"
        if not self.subgroup_compute:
            return "it has no subgroup operations in compute shaders, which the shaders need"
        missing = [op for op in ("basic", "arithmetic", "shuffle") if op not in self.subgroup_operations]
        if missing:
            return (f"it lacks subgroup {' and '.join(missing)} operations (GL_KHR_shader_subgroup_*), "
                    "which the shaders need")
        return None

    def describe(self) -> str:
        """'NAME (discrete, 79.6 GiB, subgroup 32)': for messages."""
        return f"{self.name} ({self.type}, {format_bytes(self.device_local_bytes)}, subgroup {self.subgroup_size})"


def format_bytes(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


# ---- reading the devices through the loader ----

LOADER_NAMES = {"win32": ("vulkan-1.dll",), "darwin": ("libvulkan.1.dylib", "libMoltenVK.dylib")}


def _load_loader():
    for name in LOADER_NAMES.get(sys.platform, ("libvulkan.so.1", "libvulkan.so")):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


class _Instance:
    """A Vulkan 1.1 instance with the few instance-level commands we call, destroyed by close()."""

    def __init__(self, lib):
        gipa = lib.vkGetInstanceProcAddr
        gipa.restype, gipa.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
        self._gipa = gipa
        create = self._command(None, "vkCreateInstance", I32, ctypes.POINTER(VkInstanceCreateInfo), ctypes.c_void_p,
                               ctypes.POINTER(ctypes.c_void_p))
        app = VkApplicationInfo(STRUCTURE_TYPE_APPLICATION_INFO, None, b"gpt4all-core", 1, b"gpt4all-core", 1,
                                make_api_version(1, 1))
        info = VkInstanceCreateInfo(STRUCTURE_TYPE_INSTANCE_CREATE_INFO, None, 0, ctypes.pointer(app), 0, None, 0, None)
        self.handle = ctypes.c_void_p()
        result = create(ctypes.byref(info), None, ctypes.byref(self.handle))
        if result != 0:
            raise OSError(f"vkCreateInstance failed: {RESULTS.get(result, result)}")
        h = self.handle
        self.enumerate = self._command(h, "vkEnumeratePhysicalDevices", I32, ctypes.c_void_p,
                                       ctypes.POINTER(U32), ctypes.POINTER(ctypes.c_void_p))
        self.properties = self._command(h, "vkGetPhysicalDeviceProperties", None, ctypes.c_void_p,
                                        ctypes.POINTER(VkPhysicalDeviceProperties))
        self.properties2 = self._command(h, "vkGetPhysicalDeviceProperties2", None, ctypes.c_void_p,
                                         ctypes.POINTER(VkPhysicalDeviceProperties2))
        self.memory = self._command(h, "vkGetPhysicalDeviceMemoryProperties", None, ctypes.c_void_p,
                                    ctypes.POINTER(VkPhysicalDeviceMemoryProperties))
        self._destroy = self._command(h, "vkDestroyInstance", None, ctypes.c_void_p, ctypes.c_void_p)

    def _command(self, instance, name: str, restype, *argtypes):
        address = self._gipa(instance, name.encode())
        if not address:
            raise OSError(f"the Vulkan loader has no {name}")
        return ctypes.CFUNCTYPE(restype, *argtypes)(address)

    def physical_devices(self) -> list:
        count = U32(0)
        result = self.enumerate(self.handle, ctypes.byref(count), None)
        if result != 0 or count.value == 0:
            return []
        handles = (ctypes.c_void_p * count.value)()
        result = self.enumerate(self.handle, ctypes.byref(count), handles)
        if result not in (0, 5):  # VK_INCOMPLETE: a device went away in between; take those returned
            return []
        return list(handles[:count.value])

    def close(self) -> None:
        if self.handle:
            self._destroy(self.handle, None)
            self.handle = ctypes.c_void_p()


def _read_device(vk: _Instance, index: int, handle) -> DeviceInfo:
    props = VkPhysicalDeviceProperties()
    vk.properties(handle, ctypes.byref(props))
    subgroup = VkPhysicalDeviceSubgroupProperties(STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, None)
    if props.apiVersion >= make_api_version(1, 1):  # the subgroup structure is Vulkan 1.1's
        props2 = VkPhysicalDeviceProperties2(STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                             ctypes.cast(ctypes.pointer(subgroup), ctypes.c_void_p))
        vk.properties2(handle, ctypes.byref(props2))
    mem = VkPhysicalDeviceMemoryProperties()
    vk.memory(handle, ctypes.byref(mem))
    local = [mem.memoryHeaps[i].size for i in range(mem.memoryHeapCount)
             if mem.memoryHeaps[i].flags & MEMORY_HEAP_DEVICE_LOCAL_BIT]
    lim = props.limits
    return DeviceInfo(
        index=index, name=props.deviceName.decode("utf-8", "replace"),
        type=DEVICE_TYPES.get(props.deviceType, "other"), vendor=VENDORS.get(props.vendorID, f"{props.vendorID:#x}"),
        vendor_id=props.vendorID, device_id=props.deviceID,
        driver_version=driver_version_string(props.vendorID, props.driverVersion),
        api_version=version_string(props.apiVersion), device_local_bytes=max(local, default=0),
        subgroup_size=subgroup.subgroupSize,
        subgroup_operations=tuple(op for bit, op in enumerate(SUBGROUP_OPERATIONS)
                                  if subgroup.supportedOperations >> bit & 1),
        subgroup_compute=bool(subgroup.supportedStages & SHADER_STAGE_COMPUTE_BIT),
        max_storage_buffer_range=lim.maxStorageBufferRange, max_compute_shared_memory=lim.maxComputeSharedMemorySize,
        max_workgroup_invocations=lim.maxComputeWorkGroupInvocations,
        max_workgroup_count=tuple(lim.maxComputeWorkGroupCount), timestamp_period_ns=float(lim.timestampPeriod))


def _unique_names(devices: list[DeviceInfo]) -> list[DeviceInfo]:
    """Repeated names get " (2)", " (3)"... in enumeration order, as gpt4all lists them."""
    seen: dict[str, int] = {}
    out = []
    for d in devices:
        seen[d.name] = n = seen.get(d.name, 0) + 1
        out.append(d if n == 1 else replace(d, name=f"{d.name} ({n})"))
    return out


def probe() -> tuple[list[DeviceInfo], str | None]:
    """(every Vulkan device, None) or ([], why there are none): no loader, no instance, no device."""
    lib = _load_loader()
    if lib is None:
        return [], f"no Vulkan loader ({LOADER_NAMES.get(sys.platform, ('libvulkan.so.1',))[0]}) was found"
    try:
        vk = _Instance(lib)
    except (OSError, AttributeError) as e:
        return [], f"the Vulkan loader cannot make an instance ({e})"
    try:
        devices = [_read_device(vk, i, h) for i, h in enumerate(vk.physical_devices())]
    finally:
        vk.close()
    return _unique_names(devices), None if devices else "the Vulkan loader found no device"


_cache: tuple[list[DeviceInfo], str | None] | None = None
_cache_lock = threading.Lock()


def listing() -> tuple[list[DeviceInfo], str | None]:
    """probe(), once per process."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = probe()
        return _cache


def list_devices() -> list[DeviceInfo]:
    """Every Vulkan device, in Kompute's index order (read once per process); [] without a loader."""
    return list(listing()[0])


def device_info(index: int) -> DeviceInfo | None:
    """The device of that index (kp.Manager(index)), or None."""
    return next((d for d in list_devices() if d.index == index), None)


# ---- picking a device ----

KEYWORDS = ("gpu", "kompute", "vulkan")
PREFIXES = ("kompute:", "vulkan:")
TYPE_RANK = {"discrete": 0, "integrated": 1, "virtual": 2, "other": 3, "cpu": 4}
FORMS = ("'cpu'", "'gpu'", "'kompute'", "'nvidia'", "'amd'", "'intel'", "'kompute:<device name>'",
         "'vulkan:<index>'")


def ranked(devices: list[DeviceInfo]) -> list[DeviceInfo]:
    """Best first: discrete > integrated > virtual > other > cpu, then more device-local memory."""
    return sorted(devices, key=lambda d: (TYPE_RANK.get(d.type, 3), -d.device_local_bytes, d.index))


def _inventory(devices: list[DeviceInfo], problem: str | None) -> str:
    if not devices:
        return f"{problem or 'no Vulkan device was found'}; use device='cpu'"
    lines = [f"vulkan:{d.index} {d.describe()}" + (f": unusable, {d.problem()}" if d.problem() else "")
             for d in devices]
    return "Vulkan devices here:\n  " + "\n  ".join(lines)


def _refuse(request: str, why: str, devices: list[DeviceInfo], problem: str | None) -> DeviceError:
    return DeviceError(f"device {request!r}: {why}. {_inventory(devices, problem)}")


def _checked(request: str, device: DeviceInfo, devices, problem) -> DeviceInfo:
    why = device.problem()
    if why:
        raise _refuse(request, f"{device.name} cannot run the Vulkan backend: {why}", devices, problem)
    return device


def _best(request: str, candidates: list[DeviceInfo], what: str, devices, problem) -> DeviceInfo:
    """The best usable GPU among candidates (never a CPU-type device: those must be named)."""
    gpus = [d for d in candidates if d.type != "cpu"]
    usable = [d for d in gpus if d.problem() is None]
    if usable:
        return ranked(usable)[0]
    if gpus:
        return _checked(request, ranked(gpus)[0], devices, problem)
    why = f"no {what} among the Vulkan devices"
    if candidates:
        d = candidates[0]
        why += (f" ({d.name} is a CPU implementation of Vulkan, used only when named: "
                f"device='kompute:{d.name}' or 'vulkan:{d.index}')")
    raise _refuse(request, why, devices, problem)


def select_device(request: str | None, devices: list[DeviceInfo] | None = None) -> DeviceInfo | None:
    """The device a GPT4All(device=...) request names (None: the CPU); DeviceError (a ValueError)
    when it names none that can run the backend. devices: default list_devices()."""
    if request is None:
        return None
    if not isinstance(request, str):
        raise DeviceError(f"device must be a string or None, not {type(request).__name__}; "
                          f"valid forms: {', '.join(FORMS)}")
    text = request.strip()
    key = text.lower()
    if key == "cpu":
        return None
    if key == "cuda" or key.startswith("cuda:"):
        raise DeviceError(f"device {request!r}: this build has no CUDA backend; its Vulkan backend runs on "
                          "NVIDIA GPUs too: use device='kompute' (or 'gpu', 'nvidia', 'kompute:<name>')")
    if key == "metal":
        raise DeviceError(f"device {request!r}: there is no Metal backend yet; use 'cpu', or 'gpu' for Vulkan")
    problem = None
    if devices is None:
        devices, problem = listing()
    for prefix in PREFIXES:
        if key.startswith(prefix):
            text = text[len(prefix):].strip()
            key = text.lower()
            if key.isdigit():
                found = next((d for d in devices if d.index == int(key)), None)
                if found is None:
                    raise _refuse(request, f"there is no Vulkan device {int(key)}", devices, problem)
                return _checked(request, found, devices, problem)
            break
    if key in KEYWORDS:
        return _best(request, devices, "GPU", devices, problem)
    if key in VENDORS.values():
        mine = [d for d in devices if d.vendor == key]
        return _best(request, mine, f"{key.upper() if key != 'intel' else 'Intel'} GPU", devices, problem)
    found = next((d for d in devices if d.name == text), None)
    if found is None:
        raise _refuse(request, f"no Vulkan device is named {text!r} (valid forms: {', '.join(FORMS)}, or a "
                      "name from GPT4All.list_gpus())", devices, problem)
    return _checked(request, found, devices, problem)


def list_gpus(mem_required: int = 0) -> list[str]:
    """GPT4All.list_gpus(): "kompute:<name>" of each GPU that device="gpu" could pick (CPU-type
    devices left out, as gpt4all's Kompute build leaves lavapipe out), best first."""
    usable = [d for d in list_devices() if d.type != "cpu" and d.problem() is None
              and d.device_local_bytes >= mem_required]
    return [f"kompute:{d.name}" for d in ranked(usable)]


def check_fits(device: DeviceInfo, needed_bytes: int, what: str) -> None:
    """VulkanError when needed_bytes of `what` exceed the device's device-local memory."""
    if needed_bytes > device.device_local_bytes:
        raise VulkanError(f"{what} need {format_bytes(needed_bytes)} of device memory, but {device.name} has "
                          f"{format_bytes(device.device_local_bytes)}: put fewer blocks on it (a smaller ngl) "
                          "or use device='cpu'")
