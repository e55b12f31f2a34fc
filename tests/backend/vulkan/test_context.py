"""The Vulkan context: device caps, push constants and the per-batch parameter buffer's layout."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from gpt4all_core.backend.vulkan.context import (PARAM_ARRAYS, PARAM_HEADER_WORDS, Dispatch, fill_params,
                                                 make_params, push_words)


def test_caps_read_from_the_device(vk):
    from gpt4all_core.backend.vulkan import devices
    assert vk.caps.name
    assert vk.caps.subgroup_size in (1, 2, 4, 8, 16, 32, 64, 128)
    # the shared-memory limit from the device's own limits (kp does not report it), at least Vulkan's minimum
    info = devices.device_info(vk.device_index)
    assert vk.caps.max_shared_bytes == info.max_compute_shared_memory >= 16384


def test_push_words_keep_ints_and_float_bits():
    words = push_words(7, -1, 1e-5)
    assert words[:2] == (7, 0xFFFFFFFF)
    assert struct.unpack("<f", struct.pack("<I", words[2]))[0] == np.float32(1e-5)


def test_params_layout_matches_common_glsl():
    buf = make_params(4, n_tokens=3, n_kv=9, n_logits=1, pos=[5, 6, 7], logit_rows=[2])
    assert list(buf[:PARAM_HEADER_WORDS]) == [3, 9, 1, 4]
    ints = buf.view(np.int32)
    pos = PARAM_HEADER_WORDS + PARAM_ARRAYS.index("pos") * 4
    assert list(ints[pos:pos + 3]) == [5, 6, 7]
    assert ints[PARAM_HEADER_WORDS + PARAM_ARRAYS.index("logit_rows") * 4] == 2


def test_params_refuse_too_many_tokens_and_unknown_arrays():
    buf = make_params(2, n_tokens=1)
    with pytest.raises(ValueError, match="n_tokens = 3"):
        fill_params(buf, n_tokens=3)
    with pytest.raises(ValueError, match="unknown parameter array 'nope'"):
        fill_params(buf, n_tokens=1, nope=[1])
    with pytest.raises(ValueError, match="3 values for a buffer of 2"):
        fill_params(buf, n_tokens=1, pos=[1, 2, 3])


def test_dispatch_needs_a_positive_grid():
    with pytest.raises(ValueError, match="workgroup grid"):
        Dispatch("x", (0, 1, 1))


def test_a_timing_sequence_keeps_one_fence_and_evaluates_again_and_again(vk):
    """VulkanContext.sequence(): the patched Kompute's reuse_fence on, and each of several evals
    runs the recorded work anew (a copy of a buffer changed on the host between evals)."""
    kp = vk.kp
    seq = vk.sequence()
    assert seq.reuse_fence is True
    src, dst = vk.tensor(np.zeros(64, np.uint32)), vk.tensor(np.zeros(64, np.uint32))
    seq.record(kp.OpTensorSyncDevice([src])).record(kp.OpTensorCopy([src, dst])).record(kp.OpTensorSyncLocal([dst]))
    for i in range(1, 4):
        src.data()[:] = np.arange(64, dtype=np.uint32) * i
        seq.eval()
        assert np.array_equal(dst.data(), np.arange(64, dtype=np.uint32) * i)
