"""Matrix-matrix tiles set through $GPT4ALL_CORE_VULKAN_MM (BM x BN rows and columns a workgroup, TM x TN
a thread, what benchmarks/vulkan.py --kernel-settings times): every tile computes the same product
(against float64 of the CPU's dequantized weights, with a partial last tile of rows and columns), and
bad settings are named."""
from __future__ import annotations

import numpy as np
import pytest
from vulkan_runs import poisoned

from gpt4all_core.backend import cpu_kernels
from gpt4all_core.backend.vulkan import products
from gpt4all_core.backend.vulkan.context import make_params, run_dispatch
from gpt4all_core.gguf.types import GGMLType as T

REL = 1e-5  # as test_products_32.py

TILES = [(T.Q4_0, "128x128x8x8"), (T.Q8_0, "64x32x8x4"), (T.Q4_1, "32x64x4x8"), (T.F16, "128x64x8x8"),
         (T.Q4_K, "128x128x8x8"), (T.Q6_K, "64x128x4x8")]


@pytest.mark.parametrize("ggml_type, setting", TILES, ids=[f"{t.name}-{s}" for t, s in TILES])
def test_tiles_compute_the_product(vk, monkeypatch, ggml_type, setting):
    monkeypatch.setenv(products.MM_ENV, f"{T(ggml_type).name.lower()}={setting}")
    rng = np.random.default_rng(int(ggml_type))
    n_out, n_in, max_cols, cols = 150, 512, 80, 71  # partial tiles both ways
    raw = cpu_kernels.quantize(rng.standard_normal((n_out, n_in)).astype(np.float32), int(ggml_type))
    w = cpu_kernels.dequantize(raw, int(ggml_type)).astype(np.float64)
    x = rng.standard_normal((max_cols, n_in)).astype(np.float32)
    d = products.product(vk.caps, int(ggml_type), n_out, n_in, max_cols)
    bm, bn, tm, tn = (int(v) for v in setting.split("x"))
    assert d.shader.startswith("mul_mm_") and d.spec == ((bm // tm) * (bn // tn), bm, bn, tm, tn)
    words = products.REGISTRY[int(ggml_type)].pack(raw)
    (y,) = run_dispatch(vk, d, [words, x, poisoned(max_cols, n_out)], [2], params=make_params(max_cols, n_tokens=cols))
    x64 = x[:cols].astype(np.float64)
    assert np.all(np.abs(y[:cols] - x64 @ w.T) <= REL * (np.abs(x64) @ np.abs(w).T))
    assert np.isnan(y[cols:]).all()


def test_bad_tiles_are_named(vk, monkeypatch):
    own = products.product(vk.caps, int(T.Q4_0), 64, 256, 64).spec
    monkeypatch.setenv(products.MM_ENV, "q8_0=128x128x8x8")  # another type's: Q4_0 keeps its own
    assert products.product(vk.caps, int(T.Q4_0), 64, 256, 64).spec == own
    too_big = f"q4_0={4 * vk.caps.max_workgroup_invocations}x8x4x4"
    for bad in ("q4_0=128x128x8", "q4_0=128x128x6x8", "q4_0=100x128x8x8", "q4_0=axbxcxd", too_big):
        monkeypatch.setenv(products.MM_ENV, bad)
        with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_MM"):
            products.product(vk.caps, int(T.Q4_0), 64, 256, 64)
