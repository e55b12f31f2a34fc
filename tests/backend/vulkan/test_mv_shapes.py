"""Matrix-vector workgroup shapes set through $GPT4ALL_CORE_VULKAN_MV (threads x rows [x unroll], what
benchmarks/gpu/tune_decode.py tries): bad settings are named, and every shape computes the same
product (against float64 of the CPU's dequantized weights, plain and fused forms), the unrolled
loop's last round included (row lengths that are no multiple of threads x unroll units)."""
from __future__ import annotations

import numpy as np
import pytest
from vulkan_runs import poisoned

from gpt4all_core.backend import cpu_kernels
from gpt4all_core.backend.vulkan import products, types_32
from gpt4all_core.backend.vulkan.context import make_params, run_dispatch
from gpt4all_core.gguf.types import GGMLType as T

REL = 1e-5  # as test_products_32.py


def assert_plain_and_fused(vk, d, ggml_type, words, w, x, gamma, cols, label=None):
    """The product d of w (float64, as dequantized) with the rows of x, cols of them tokens, and its
    fused form (rms_norm(X) * gamma first): both within REL of float64, the columns past cols left
    alone."""
    n_out, n_in = w.shape
    max_cols = x.shape[0]
    (y,) = run_dispatch(vk, d, [words, x, poisoned(max_cols, n_out)], [2],
                        params=make_params(max_cols, n_tokens=cols))
    x64 = x[:cols].astype(np.float64)
    assert np.all(np.abs(y[:cols] - x64 @ w.T) <= REL * (np.abs(x64) @ np.abs(w).T)), label
    assert np.isnan(y[cols:]).all(), label
    d = products.fused_product(vk.caps, int(ggml_type), n_out, n_in, max_cols, 1e-5)
    (y,) = run_dispatch(vk, d, [words, x, poisoned(max_cols, n_out), gamma], [2],
                        params=make_params(max_cols, n_tokens=cols))
    xn = x64 / np.sqrt((x64 * x64).mean(axis=1, keepdims=True) + 1e-5) * gamma
    assert np.all(np.abs(y[:cols] - xn @ w.T) <= REL * (np.abs(xn) @ np.abs(w).T)), (label, "fused")


def test_settings_are_read_per_type_and_bad_ones_named(vk, monkeypatch):
    q8_0_own = products.product(vk.caps, int(T.Q8_0), 64, 512, 1).spec
    monkeypatch.setenv(products.MV_ENV, "q4_0=32x2, q4_k=128x8x2")
    assert products.product(vk.caps, int(T.Q4_0), 64, 512, 1).spec == (32, 2, 1, 0, 0, 1, 1)  # HALVES (id 6) on
    assert products.product(vk.caps, int(T.Q4_K), 64, 512, 1).spec == (128, 8, 1, 0, 0, 2, 0, 5)  # UNROLL id 5, K_MODE 7
    assert products.product(vk.caps, int(T.Q8_0), 64, 512, 1).spec == q8_0_own  # not named: its own
    fused = products.fused_product(vk.caps, int(T.Q4_K), 64, 512, 1, 1e-6, "gelu")
    assert fused.spec[:3] == (128, 8, 1) and fused.spec[3] == 1 and fused.spec[5] == 2
    for bad in ("q4_0=32", "q4_0=33x2", "q4_0=32x9", "q4_0=32x2x5", "q4_0=axb", "q4_0@x=32x2", "q4_0=32x2x1x3",
                "q4_0=32x2x1x2x1"):
        monkeypatch.setenv(products.MV_ENV, bad)
        with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_MV"):
            products.product(vk.caps, int(T.Q4_0), 64, 512, 1)
    for name, t in (("q8_0", T.Q8_0), ("q4_k", T.Q4_K)):  # a split is for 16-byte blocks
        monkeypatch.setenv(products.MV_ENV, f"{name}=64x4x1x2")
        with pytest.raises(ValueError, match="split"):
            products.product(vk.caps, int(t), 64, 512, 1)


def test_a_row_length_setting_wins_over_its_types(vk, monkeypatch):
    monkeypatch.setenv(products.MV_ENV, "q4_0@1024=32x2x4,q4_0=64x4")  # the order does not matter
    assert products.product(vk.caps, int(T.Q4_0), 64, 1024, 1).spec == (32, 2, 1, 0, 0, 4, 1)
    assert products.product(vk.caps, int(T.Q4_0), 64, 512, 1).spec == (64, 4, 1, 0, 0, 1, 1)
    assert products.fused_product(vk.caps, int(T.Q4_0), 64, 1024, 1, 1e-6).spec[:3] == (32, 2, 1)
    monkeypatch.setenv(products.MV_ENV, "q4_k@1024=32x2")
    assert products.product(vk.caps, int(T.Q4_K), 64, 1024, 1).spec == (32, 2, 1, 0, 0, 1, 0, 5)


def test_own_shapes_and_halves_by_type(vk, monkeypatch):
    """Without settings: Q4_0 in half blocks on up to 256 threads below MV_SPLIT_ROWS rows, whole
    ones from there, and the 32-element quants widened as halves, the K-quants and float rows not;
    $GPT4ALL_CORE_VULKAN_HALVES=0 or 1 sets it for all."""
    monkeypatch.delenv(products.MV_ENV, raising=False)
    monkeypatch.delenv(products.HALVES_ENV, raising=False)

    def spec(t):
        return products.product(vk.caps, int(t), 64, 4096, 1).spec
    assert spec(T.Q4_0)[:2] == (min(256, vk.caps.max_workgroup_invocations), 8) and spec(T.Q4_0)[6:] == (1, 2)
    tall = products.product(vk.caps, int(T.Q4_0), types_32.MV_SPLIT_ROWS, 4096, 1).spec
    assert tall[:2] == (64, 8) and tall[6:] == (1,)
    for t in (T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        assert len(spec(t)) == 7 and spec(t)[6] == 1, t.name
    for t in (T.F32, T.F16, T.Q4_K, T.Q6_K):
        assert len(spec(t)) < 7 or spec(t)[6] == 0, t.name
    monkeypatch.setenv(products.HALVES_ENV, "0")
    assert spec(T.Q4_0)[6] == 0 and len(spec(T.Q8_0)) < 7
    monkeypatch.setenv(products.HALVES_ENV, "1")
    assert spec(T.Q4_K)[6] == 1


SHAPES = [(T.F32, "32x2x2", 96), (T.Q4_0, "32x8x2", 2080), (T.Q4_0, "64x4x3", 4096), (T.Q8_0, "32x4x2", 544),
          (T.Q4_K, "32x8x2", 2560), (T.Q6_K, "64x2x3", 4352),
          (T.Q4_0, "32x8x2x2", 2080), (T.Q5_1, "64x4x1x4", 4096), (T.Q4_1, "32x2x3x4", 544), (T.Q5_0, "64x8x1x2", 800)]
# the 4th field splits a 16-byte block into 2 or 4 units (more threads a row)


@pytest.mark.parametrize("ggml_type, setting, n_in", SHAPES, ids=[f"{t.name}-{s}-{n}" for t, s, n in SHAPES])
def test_unrolled_shapes_compute_the_product(vk, monkeypatch, ggml_type, setting, n_in):
    monkeypatch.setenv(products.MV_ENV, f"{T(ggml_type).name.lower()}={setting}")
    rng = np.random.default_rng(n_in)
    n_out, max_cols, cols = 21, 4, 3
    raw = cpu_kernels.quantize(rng.standard_normal((n_out, n_in)).astype(np.float32), int(ggml_type))
    w = cpu_kernels.dequantize(raw, int(ggml_type)).astype(np.float64)
    x = rng.standard_normal((max_cols, n_in)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, n_in).astype(np.float32)  # the fused form's loop is the same one
    d = products.product(vk.caps, int(ggml_type), n_out, n_in, max_cols)
    fields = [int(v) for v in setting.split("x")]
    assert d.spec[5] == fields[2] and (len(fields) < 4 or d.spec[7] == fields[3])
    words = products.REGISTRY[int(ggml_type)].pack(raw)
    assert_plain_and_fused(vk, d, ggml_type, words, w, x, gamma, cols)


HALF_TYPES = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]


@pytest.mark.parametrize("ggml_type", HALF_TYPES, ids=[t.name for t in HALF_TYPES])
def test_quants_widened_as_halves_give_the_same_bits(vk, monkeypatch, ggml_type):
    """types_32.glsl's and k_common.glsl's HALVES ($GPT4ALL_CORE_VULKAN_HALVES=1: two quants a word
    through unpackHalf2x16) against one at a time (the default): the same exact quants go into the
    same sums (Q4_K to Q6_K then scale them in one fma, not through 0.5 + q / 256: close, not the
    same bits)."""
    rng = np.random.default_rng(int(ggml_type))
    n_out, n_in = 37, 1024  # whole 256-element super-blocks
    raw = cpu_kernels.quantize(rng.standard_normal((n_out, n_in)).astype(np.float32), int(ggml_type))
    words = products.REGISTRY[int(ggml_type)].pack(raw)
    x = rng.standard_normal((1, n_in)).astype(np.float32)
    w = cpu_kernels.dequantize(raw, int(ggml_type)).astype(np.float64)
    ys = []
    for halves in ("1", "0"):
        monkeypatch.setenv(products.HALVES_ENV, halves)
        d = products.product(vk.caps, int(ggml_type), n_out, n_in, 1)
        assert (len(d.spec) >= 7 and d.spec[6] == 1) == (halves == "1")
        (y,) = run_dispatch(vk, d, [words, x, poisoned(1, n_out)], [2])
        ys.append(y)
    x64 = x.astype(np.float64)
    assert np.all(np.abs(ys[0] - x64 @ w.T) <= REL * (np.abs(x64) @ np.abs(w).T))
    assert np.all(np.abs(ys[1] - x64 @ w.T) <= REL * (np.abs(x64) @ np.abs(w).T))
    if ggml_type not in (T.Q4_K, T.Q5_K, T.Q6_K):
        assert np.array_equal(ys[0], ys[1])
    monkeypatch.setenv(products.HALVES_ENV, "2")
    with pytest.raises(ValueError, match="GPT4ALL_CORE_VULKAN_HALVES"):
        products.product(vk.caps, int(ggml_type), n_out, n_in, 1)


K_TYPES = [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]


@pytest.mark.parametrize("ggml_type", K_TYPES, ids=[t.name for t in K_TYPES])
def test_k_quants_scaled_after_the_dot_or_before_in_either_order(vk, monkeypatch, ggml_type):
    """k_mul_mv.comp's K_MODE: AFFINE (the default: each part's dot with the raw quants scaled once,
    its offset times X's sum added) or each quant scaled first ($GPT4ALL_CORE_VULKAN_AFFINE=0), groups
    in row order or sorted ($GPT4ALL_CORE_VULKAN_KSORT=1: a whole run of 64 groups, then 8 groups left
    in row order), sums transposed (the default) or not ($GPT4ALL_CORE_VULKAN_KTRANSPOSE=0): all within
    REL of float64, plain and fused, with halves and without, on several columns."""
    rng = np.random.default_rng(100 + int(ggml_type))
    n_out, n_in, max_cols, cols = 19, 2304, 4, 3  # 9 super-blocks: 72 groups a row
    raw = cpu_kernels.quantize(rng.standard_normal((n_out, n_in)).astype(np.float32), int(ggml_type))
    words = products.REGISTRY[int(ggml_type)].pack(raw)
    w = cpu_kernels.dequantize(raw, int(ggml_type)).astype(np.float64)
    x = (rng.standard_normal((max_cols, n_in)) + 0.5).astype(np.float32)  # a mean, so that X's sums matter
    gamma = rng.uniform(0.5, 1.5, n_in).astype(np.float32)
    monkeypatch.setenv(products.MV_ENV, f"{T(ggml_type).name.lower()}=32x4x2")  # 3 of 4 columns, rounds left over
    for affine, ksort, halves, transpose in (("1", "0", "0", "1"), ("1", "0", "1", "1"), ("0", "0", "0", "1"),
                                             ("0", "0", "1", "1"), ("1", "1", "0", "1"), ("1", "1", "1", "1"),
                                             ("0", "1", "0", "1"), ("1", "0", "0", "0"), ("0", "1", "1", "0")):
        monkeypatch.setenv(products.AFFINE_ENV, affine)
        monkeypatch.setenv(products.KSORT_ENV, ksort)
        monkeypatch.setenv(products.HALVES_ENV, halves)
        monkeypatch.setenv(products.KTRANSPOSE_ENV, transpose)
        d = products.product(vk.caps, int(ggml_type), n_out, n_in, max_cols)
        assert (d.spec + (1, 1, 1))[7] == int(affine) + 2 * int(ksort) + 4 * int(transpose), d.spec
        assert_plain_and_fused(vk, d, ggml_type, words, w, x, gamma, cols, (affine, ksort, halves, transpose))
    for name in (products.AFFINE_ENV, products.KSORT_ENV, products.KTRANSPOSE_ENV):
        monkeypatch.setenv(name, "yes")
        with pytest.raises(ValueError, match=name):
            products.product(vk.caps, int(ggml_type), n_out, n_in, 1)
        monkeypatch.setenv(name, "1")


@pytest.mark.parametrize("ggml_type", [T.Q4_K, T.Q6_K], ids=["Q4_K", "Q6_K"])
def test_k_quant_sums_transposed_across_the_subgroup(vk, monkeypatch, ggml_type):
    """k_mul_mv.comp's TRANSPOSED (the default; $GPT4ALL_CORE_VULKAN_KTRANSPOSE): the ROWS x COLS partial sums
    added across a subgroup in one transposing pass of shuffles. The same product within REL of
    float64, plain and fused, where a workgroup is one subgroup (its lanes write Y), several (shared
    memory), the sums fewer than the lanes (each held by several), as many, and where they are no
    power of two or more than the lanes (subgroupAdd instead)."""
    rng = np.random.default_rng(300 + int(ggml_type))
    n_out, n_in = 19, 1024
    raw = cpu_kernels.quantize(rng.standard_normal((n_out, n_in)).astype(np.float32), int(ggml_type))
    words = products.REGISTRY[int(ggml_type)].pack(raw)
    w = cpu_kernels.dequantize(raw, int(ggml_type)).astype(np.float64)
    x = (rng.standard_normal((8, n_in)) + 0.5).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, n_in).astype(np.float32)
    sub = vk.caps.subgroup_size
    monkeypatch.delenv(products.KTRANSPOSE_ENV, raising=False)
    # (threads x rows, columns): rows x columns sums (at most 4 rows for several columns)
    for shape, cols in ((f"{sub}x2", 1), (f"{sub}x8", 1), (f"{2 * sub}x8", 1), (f"{sub}x4", 4), ("64x3", 1),
                        (f"{sub}x4", 2), (f"{sub}x4", 3), (f"{sub}x4", 8)):
        monkeypatch.setenv(products.MV_ENV, f"{T(ggml_type).name.lower()}={shape}")
        d = products.product(vk.caps, int(ggml_type), n_out, n_in, cols)
        assert d.spec[7] == 1 + 4, d.spec
        assert_plain_and_fused(vk, d, ggml_type, words, w, x[:cols], gamma, cols, (shape, cols))
