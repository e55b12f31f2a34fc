"""One Vulkan device through Kompute: its manager, what its shaders may assume, and how one op
(a Dispatch) runs over buffers.

Every op of the Vulkan backend is a function that returns a Dispatch: which compiled shader, the
workgroup grid, the specialization constants and the push constants. What it binds is documented
with the function: binding 0 is always the per-batch parameter buffer (shaders/common.glsl), the
op's own buffers follow from binding 1. The decoder binds its long-lived buffers to these
dispatches and records them once; tests run one dispatch over numpy arrays with run_dispatch().
"""
from __future__ import annotations

import struct
import threading
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gpt4all_core.backend import shaders
from gpt4all_core.errors import GPT4AllCoreError


class VulkanError(GPT4AllCoreError, RuntimeError):
    """The Vulkan backend cannot run here: no loader or device, a device that lacks what the
    shaders need, or a model too large for the device's memory. The message says which."""


@dataclass(frozen=True)
class Caps:
    """What shaders on this device may assume. subgroup_size is the size the device reports
    (shaders must still be right for any size: reductions go through gl_NumSubgroups)."""
    name: str
    subgroup_size: int = 32
    max_workgroup_invocations: int = 1024
    max_shared_bytes: int = 16384           # Vulkan's guaranteed minimum
    max_storage_buffer_bytes: int = 1 << 27  # Vulkan's guaranteed minimum


@dataclass(frozen=True)
class Dispatch:
    """One shader dispatch: shader is the .spv name, groups the workgroup grid, spec the uint32
    specialization constants (constant_id 0, 1, ...), push the push-constant words."""
    shader: str
    groups: tuple[int, int, int]
    spec: tuple[int, ...] = ()
    push: tuple[int, ...] = ()

    def __post_init__(self):
        if any(g < 1 for g in self.groups):
            raise ValueError(f"{self.shader}: workgroup grid {self.groups} must be positive")


def push_words(*values) -> tuple[int, ...]:
    """Push constants as uint32 words: ints as (u)int32, floats as float32 bits."""
    words = []
    for v in values:
        if isinstance(v, (float, np.floating)):
            words.append(struct.unpack("<I", struct.pack("<f", float(v)))[0])
        else:
            words.append(int(v) & 0xFFFFFFFF)
    return tuple(words)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---- the per-batch parameter buffer (shaders/common.glsl) ----

PARAM_HEADER_WORDS = 4
PARAM_ARRAYS = ("tokens", "pos", "slots", "kv_lo", "kv_hi", "logit_rows")


def param_words(max_batch: int) -> int:
    return PARAM_HEADER_WORDS + len(PARAM_ARRAYS) * max_batch


def make_params(max_batch: int, **values) -> np.ndarray:
    """A fresh parameter buffer (uint32 words) for up to max_batch tokens, filled by fill_params."""
    buf = np.zeros(param_words(max_batch), np.uint32)
    buf[3] = max_batch
    fill_params(buf, **values)
    return buf


def fill_params(buf: np.ndarray, *, n_tokens: int, n_kv: int = 0, n_logits: int = 0, **arrays) -> None:
    """Writes one batch's values into buf (uint32 words, max_batch already in buf[3]). arrays:
    any of PARAM_ARRAYS, each of at most max_batch ints."""
    max_batch = int(buf[3])
    if not 0 <= n_tokens <= max_batch or not 0 <= n_logits <= max_batch:
        raise ValueError(f"n_tokens = {n_tokens} and n_logits = {n_logits} must lie in [0, {max_batch}]")
    buf[0], buf[1], buf[2] = n_tokens, n_kv, n_logits
    ints = buf.view(np.int32)
    for name, values in arrays.items():
        if name not in PARAM_ARRAYS:
            raise ValueError(f"unknown parameter array {name!r}; known: {', '.join(PARAM_ARRAYS)}")
        v = np.asarray(values, np.int32).reshape(-1)
        if v.shape[0] > max_batch:
            raise ValueError(f"{name}: {v.shape[0]} values for a buffer of {max_batch}")
        start = PARAM_HEADER_WORDS + PARAM_ARRAYS.index(name) * max_batch
        ints[start:start + v.shape[0]] = v


# ---- the device ----

class VulkanContext:
    """A Kompute manager on one physical device (index as vkEnumeratePhysicalDevices orders them),
    with the SPIR-V of the package's shaders loaded on demand."""

    def __init__(self, device_index: int = 0):
        try:
            import kp
        except ImportError as e:  # pragma: no cover - dev.sh installs it
            raise VulkanError(f"the Vulkan backend needs Kompute's Python package kp ({e}); "
                              "pip install 'gpt4all-core[vulkan]'") from None
        self.kp = kp
        # tools/kp_patch.py's Kompute (0.9.0+gk5, which ./dev.sh builds) orders each dispatch after the
        # ones it depends on and can leave a barrier out; a stock kp orders transfers only
        self.can_skip_barriers = hasattr(kp.OpAlgoDispatch, "barrier")
        if not self.can_skip_barriers:
            warnings.warn("kp is not gpt4all-core's patched Kompute (0.9.0+gk5, which ./dev.sh builds with "
                          "tools/kp_patch.py): its dispatches are not ordered after one another by the Vulkan "
                          "spec, which some drivers need", RuntimeWarning, stacklevel=2)
        try:
            self.manager = kp.Manager(device_index)
            props = self.manager.get_device_properties()
        except Exception as e:
            raise VulkanError(f"cannot open Vulkan device {device_index}: {e}") from None
        self.device_index = device_index
        self._spirv: dict[str, bytes] = {}
        self.caps = Caps(name=props["device_name"], max_workgroup_invocations=props["max_work_group_invocations"])
        from gpt4all_core.backend.vulkan import devices  # it imports this module
        info = devices.device_info(device_index)  # its limits and type, which kp does not report
        self.device_type = info.type if info else None  # "discrete", ..., "cpu" (lavapipe)
        self.caps = Caps(name=self.caps.name, subgroup_size=self._probe_subgroup_size(),
                         max_workgroup_invocations=self.caps.max_workgroup_invocations,
                         max_shared_bytes=info.max_compute_shared_memory if info else Caps.max_shared_bytes)

    def sequence(self):
        """A Kompute sequence for repeated evals (timing loops): one fence for all its submits where
        tools/kp_patch.py's Kompute can (making a fence each submit, as stock Kompute does, cost
        0.25-0.41 ms on an H100, benchmarks/gpu/submit_latency.c)."""
        seq = self.manager.sequence()
        if hasattr(seq, "reuse_fence"):
            seq.reuse_fence = True
        return seq

    def spirv(self, name: str) -> bytes:
        code = self._spirv.get(name)
        if code is None:
            code = self._spirv[name] = shaders.spirv(name)
        return code

    def tensor(self, array: np.ndarray, kind: str = "device"):
        """A Kompute tensor holding array (float32, int32 or uint32, any shape, flattened).
        kind: "device" (device memory plus a host staging copy: synced with OpTensorSync*),
        "host" (host-visible memory the shaders read and write directly: per-batch parameters,
        logits) or "storage" (device memory only: filled by shaders or by upload())."""
        a = np.ascontiguousarray(array).reshape(-1)
        if a.dtype not in (np.float32, np.int32, np.uint32):
            raise TypeError(f"tensor: dtype {a.dtype} (float32, int32 or uint32)")
        if a.size == 0:
            a = np.zeros(1, a.dtype)
        return self.manager.tensor_t(a, getattr(self.kp.TensorTypes, kind))

    def algorithm(self, dispatch: Dispatch, tensors: Sequence):
        return self.manager.algorithm(list(tensors), self.spirv(dispatch.shader), dispatch.groups,
                                      np.asarray(dispatch.spec, np.uint32), np.asarray(dispatch.push or (0,), np.uint32))

    def _probe_subgroup_size(self) -> int:
        out = self.tensor(np.zeros(1, np.uint32))
        algo = self.algorithm(Dispatch("probe_subgroup", (1, 1, 1)), [out])
        self.manager.sequence().record(self.kp.OpAlgoDispatch(algo)).record(self.kp.OpTensorSyncLocal([out])).eval()
        return int(out.data()[0])


def run_dispatch(ctx: VulkanContext, dispatch: Dispatch, buffers: Sequence[np.ndarray], outputs: Sequence[int],
                 params: np.ndarray | None = None) -> list[np.ndarray]:
    """Runs one dispatch (tests, op by op): params (a make_params buffer, or a 1-token default) at
    binding 0, buffers at 1..; returns copies of buffers[i] for i in outputs, as written by the
    shader, in their dtypes and shapes."""
    kp = ctx.kp
    if params is None:
        params = make_params(1, n_tokens=1)
    tensors = [ctx.tensor(params)] + [ctx.tensor(b) for b in buffers]
    algo = ctx.algorithm(dispatch, tensors)
    (ctx.manager.sequence().record(kp.OpTensorSyncDevice(tensors)).record(kp.OpAlgoDispatch(algo))
        .record(kp.OpTensorSyncLocal([tensors[1 + i] for i in outputs])).eval())
    result = []
    for i in outputs:
        data = tensors[1 + i].data()
        result.append(np.array(data[:buffers[i].size], copy=True).view(buffers[i].dtype).reshape(buffers[i].shape))
    return result


_contexts: dict[int, VulkanContext] = {}
_contexts_lock = threading.Lock()


def get_context(device_index: int = 0) -> VulkanContext:
    """The process's one context per device (a Kompute manager is costly to make)."""
    with _contexts_lock:
        ctx = _contexts.get(device_index)
        if ctx is None:
            ctx = _contexts[device_index] = VulkanContext(device_index)
        return ctx
