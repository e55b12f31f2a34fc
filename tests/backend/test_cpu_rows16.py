"""Rows16 (kernels/rows16.c, rows16_avx512.c): Q4_1 matrices repacked 16 rows at a time, the product
every decoder matrix of that type takes on AVX-512 VNNI. Checked against float64 numpy with
check_matmul's data-derived bounds (random bytes: every level, random scales and mins), for batch
invariance (a row's bits do not depend on its batch or the thread count), generic against AVX-512
(the same bits), and in a whole model against the GGUF row layout ($GPT4ALL_CORE_CPU_ROWS16=0)."""
from __future__ import annotations

import numpy as np
import pytest

from gpt4all_core import models
from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.backend.cpu_kernels import ROWS16_ENV
from gpt4all_core.gguf import GGMLType

from model_files import dequantized
from quant_checks import random_blocks

Q4_1, Q8_0S = int(GGMLType.Q4_1), 31


def product(m: int, blocks: int, n: int, seed: int, n_threads: int | None = None):
    raw = random_blocks("Q4_1", m, 32 * blocks, seed)
    x = np.random.default_rng(seed + 1).standard_normal((n, 32 * blocks)).astype(np.float32)
    return raw, x, ck.matmul_rows16(ck.repack_rows16(raw, Q4_1), Q4_1, x, n_threads=n_threads)


@pytest.mark.parametrize("m, blocks, n", [(16, 1, 1), (16, 3, 4), (32, 18, 8), (48, 5, 13), (64, 2, 40),
                                          (1536, 18, 3)])
def test_rows16_matches_float64(simd, m, blocks, n):
    raw, x, y = product(m, blocks, n, seed=m + blocks + n)
    w = ck.dequantize(raw, Q4_1).astype(np.float64)
    x_q = ck.dequantize(ck.quantize(x, Q8_0S), Q8_0S).astype(np.float64)
    assert y.shape == (n, m) and y.dtype == np.float32
    scale = np.abs(x_q) @ np.abs(w).T
    assert (np.abs(y - x_q @ w.T) <= 1e-5 * scale + 1e-6).all()


def test_a_rows_bits_do_not_depend_on_its_batch_or_threads():
    raw, x, y = product(96, 7, 21, seed=5, n_threads=2)
    packed = ck.repack_rows16(raw, Q4_1)
    alone = np.stack([ck.matmul_rows16(packed, Q4_1, x[j], n_threads=1) for j in range(len(x))])
    assert np.array_equal(y, alone)
    assert np.array_equal(ck.matmul_rows16(packed, Q4_1, x[5:14], n_threads=2), y[5:14])


def test_generic_and_avx512_give_the_same_bits():
    if "avx512" not in ck.supported_simd_levels():
        pytest.skip("this CPU has no AVX-512 VNNI: the generic form is the only one")
    raw = random_blocks("Q4_1", 32, 64 * 32, 9)
    packed = ck.repack_rows16(raw, Q4_1)
    x = np.random.default_rng(3).standard_normal((11, 64 * 32)).astype(np.float32) * 4
    before = ck.simd_level()
    try:
        ys = {}
        for level in ("generic", "avx512"):
            ck.select_simd(level)
            ys[level] = ck.matmul_rows16(packed, Q4_1, x)
        assert ck.rows16_supported(Q4_1) and not ck.rows16_supported(int(GGMLType.Q4_0))
    finally:
        ck.select_simd(before)
    assert np.array_equal(ys["generic"], ys["avx512"])


def test_repack_is_the_same_bytes_in_another_order():
    raw = random_blocks("Q4_1", 32, 96, 2)
    packed = ck.repack_rows16(raw, Q4_1)
    assert packed.shape == raw.shape and np.array_equal(np.sort(packed, axis=None), np.sort(raw, axis=None))
    group0_block0 = packed.reshape(-1)[:320]  # 16 d, 16 m, then 4 x 16 quant words
    assert np.array_equal(group0_block0[:32].reshape(16, 2), raw[:16, 0:2])
    assert np.array_equal(group0_block0[64:128].reshape(16, 4), raw[:16, 4:8])


@pytest.mark.parametrize("call, match", [
    (lambda: ck.repack_rows16(random_blocks("Q4_1", 24, 64, 0), Q4_1), "24 rows"),
    (lambda: ck.repack_rows16(random_blocks("Q4_0", 16, 64, 0), int(GGMLType.Q4_0)), "Q4_1 only"),
    (lambda: ck.matmul_rows16(random_blocks("Q4_1", 16, 64, 0), Q4_1, np.zeros(32, np.float32)), r"x: expected"),
    (lambda: ck.matmul_rows16(random_blocks("Q4_1", 8, 64, 0), Q4_1, np.zeros(64, np.float32)), "groups of 16"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_smollm2_with_rows16_is_as_close_to_exact_as_without(smollm2_path, monkeypatch):
    """The decoder repacks SmolLM2's Q4_1 matrices (576, 192 and 1536 rows: all of them) unless
    $GPT4ALL_CORE_CPU_ROWS16=0. Only the float order of each sum changes, which the 8-bit
    activations of later layers then round differently; so both layouts are held against the same
    weights dequantized to F32 (no activation quantization) and rows16 must be as close as the GGUF
    layout, within a quarter (as test_llama.py holds us against llama.cpp)."""
    tokens = np.array([1, 504, 3458, 282, 260, 2114, 30, 9023, 314, 1345, 28, 253, 4412, 30], np.int32)
    pos = np.arange(len(tokens), dtype=np.int32)

    def logits(path):
        with models.load(path) as model:
            return model.decoder.forward(model.new_cache(32), tokens, pos, pos, len(tokens), len(tokens))
    exact = logits(dequantized(smollm2_path))
    err = {}
    for value in ("1", "0"):
        monkeypatch.setenv(ROWS16_ENV, value)
        err[value] = np.abs(logits(smollm2_path) - exact).mean()
    assert err["1"] != err["0"]  # the repacked product did run
    assert err["1"] <= 1.25 * err["0"], err
    monkeypatch.setenv(ROWS16_ENV, "yes")
    with pytest.raises(ValueError, match=ROWS16_ENV):
        models.load(smollm2_path)
