"""Shared by the Vulkan op tests: running one dispatch with one buffer bound at several bindings
(the in-place and memmove cases run_dispatch cannot express), and poisoned buffers."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from gpt4all_core.backend.vulkan.context import Dispatch, VulkanContext


def run_bound(ctx: VulkanContext, dispatch: Dispatch, arrays: Sequence[np.ndarray], bindings: Sequence[int],
              outputs: Sequence[int], params: np.ndarray) -> list[np.ndarray]:
    """run_dispatch, except that binding 1 + b holds the tensor of arrays[bindings[b]], so two
    bindings may share one buffer; returns arrays[i] as the shader left them, for i in outputs."""
    kp = ctx.kp
    tensors = [ctx.tensor(a) for a in arrays]
    bound = [ctx.tensor(params)] + [tensors[i] for i in bindings]
    algo = ctx.algorithm(dispatch, bound)
    (ctx.manager.sequence().record(kp.OpTensorSyncDevice([bound[0]] + tensors)).record(kp.OpAlgoDispatch(algo))
        .record(kp.OpTensorSyncLocal([tensors[i] for i in outputs])).eval())
    return [np.array(tensors[i].data()[:arrays[i].size], copy=True).view(arrays[i].dtype).reshape(arrays[i].shape)
            for i in outputs]


def poisoned(*shape) -> np.ndarray:
    """float32 NaNs: an output element the shader should write and did not stays NaN."""
    return np.full(shape, np.nan, np.float32)


def nan_words(n: int) -> np.ndarray:
    """uint32 words that are NaN as float32 and as both halves (0x7e00 7e00: quiet NaN halves)."""
    return np.full(n, 0x7E007E00, np.uint32)
