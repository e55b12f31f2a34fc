"""The Vulkan decoder's switches, each an environment variable read when a pass is recorded: for
A/B runs on a GPU (benchmarks/gpu/tune_decode.py sets them one at a time) and for the tests that
check each gives the same logits. A value outside a switch's set is refused by name.
"""
from __future__ import annotations

import os

from gpt4all_core.backend.env import choice  # noqa: F401 - the Vulkan switches' reader
from gpt4all_core.backend.vulkan.context import VulkanError

ATTENTION_SPLIT = 8  # the parts a decode step's attention is split into by default
MAX_ATTENTION_SPLIT = 64  # what the scratch is sized for
# "1" to "64": the parts a decode step's attention is split into, in place of ATTENTION_SPLIT ("1":
# the unsplit kernel; A/B runs: "no attention" saved 8% of a 6.7B step on an H100, at 17 slots).
# Read when a sequence is recorded
ATTENTION_SPLIT_ENV = "GPT4ALL_CORE_VULKAN_ATTN_SPLIT"
# A/B runs: "0": decoding records the norms, activations, RoPE, KV stores and the merge of split
# attention as dispatches of their own; "norm": the norms and activations fused into the products,
# the rest apart; default "1": RoPE and the stores in the q, k, v products too, and split attention
# merged by its own last workgroup
FUSE_ENV = "GPT4ALL_CORE_VULKAN_FUSE"
# "host": the per-batch parameters and the cache's slot positions stay in host-visible memory that
# the shaders read over the bus (the old way, for A/B runs); default "device": device memory, each
# recorded pass first copying them over from their host staging copy
PARAMS_ENV = "GPT4ALL_CORE_VULKAN_PARAMS"
# "spin": the host polls a pass's fence instead of sleeping on it (tools/kp_patch.py's spin_wait),
# so it sees the pass end at once (6.7B Q4_0 decoding on an H100 ran 0.935x as fast sleeping): the
# default on a GPU; "sleep": the default on a CPU device (lavapipe), whose own threads need the
# cores. Read when a sequence is recorded
WAIT_ENV = "GPT4ALL_CORE_VULKAN_WAIT"
# "fresh": each pass's submit gets a fence of its own, created and destroyed, as stock Kompute does
# (A/B runs); default "reuse": one fence a recorded pass (tools/kp_patch.py's reuse_fence), reset
# before each submit, as llama.cpp keeps its fence. Read when a sequence is recorded
FENCE_ENV = "GPT4ALL_CORE_VULKAN_FENCE"


def fuse_setting() -> str:
    """$FUSE_ENV: "1" (default), "norm" or "0"."""
    value = os.environ.get(FUSE_ENV, "1").strip() or "1"
    if value not in ("1", "norm", "0"):
        raise ValueError(f"${FUSE_ENV}: {value!r} is not '1', 'norm' or '0'")
    return value


def attention_split() -> int:
    """$ATTENTION_SPLIT_ENV, else ATTENTION_SPLIT; anything but 1 to 64 is refused by name."""
    value = os.environ.get(ATTENTION_SPLIT_ENV, "").strip()
    if not value:
        return ATTENTION_SPLIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_ATTENTION_SPLIT:
        raise ValueError(f"${ATTENTION_SPLIT_ENV}: {value!r} is not a whole number from 1 to {MAX_ATTENTION_SPLIT}")
    return int(value)


def params_kind() -> str:
    return choice(PARAMS_ENV, "device", "host")


def _patched(variable: str, on: str, off: str, default_on: bool, kp, attribute: str) -> bool:
    """Whether $variable (on or off, default_on when unset) turns on a feature that needs
    tools/kp_patch.py's Kompute (kp.Sequence.<attribute>): asked for without it, it is refused by
    name; by default it is then off."""
    asked = os.environ.get(variable, "").strip()
    wanted = choice(variable, on if default_on else off, off if default_on else on) == on
    if wanted and not hasattr(kp.Sequence, attribute):
        if asked:
            raise VulkanError(f"${variable}={on} needs gpt4all-core's patched Kompute (./dev.sh builds it)")
        return False
    return wanted


def spin_wait(kp, cpu_device: bool) -> bool:
    """Whether recorded passes poll their fence ($WAIT_ENV, else spin on a GPU and sleep on a CPU
    device): polling needs tools/kp_patch.py's Kompute, without which the default sleeps."""
    return _patched(WAIT_ENV, "spin", "sleep", not cpu_device, kp, "spin_wait")


def reuse_fence(kp) -> bool:
    """Whether recorded passes keep one fence ($FENCE_ENV): needs tools/kp_patch.py's Kompute,
    without which the default makes a fresh fence each submit."""
    return _patched(FENCE_ENV, "reuse", "fresh", True, kp, "reuse_fence")
