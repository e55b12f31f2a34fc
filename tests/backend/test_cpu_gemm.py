"""The matrix-matrix microkernels (kernels/gemm_avx512.c, gemm_k_avx512.c) that every product of a
type with one takes: register tiles of weight rows by activation rows, with rows, activations and
blocks left over at every edge. Checked against float64 numpy (check_matmul's data-derived bounds),
against the dot-per-row path on the same data, and for batch invariance: a row's result is the same
bits whatever batch and thread count it came in."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.gguf import GGMLType

from quant_checks import check_matmul, random_blocks

BLOCK32_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q8_0"]
SUPER_BLOCK_TYPES = ["Q4_K", "Q6_K"]
FLOAT_TYPES = ["F32", "F16", "BF16"]
GEMM_TYPES = BLOCK32_TYPES + SUPER_BLOCK_TYPES + FLOAT_TYPES


@pytest.fixture
def avx512():
    if "avx512" not in ck.supported_simd_levels():
        pytest.skip("this CPU has no AVX-512 VNNI, where the matrix kernels live")
    before = ck.simd_level()
    ck.select_simd("avx512")
    assert ck.matrix_kernel_min_batch() == 1  # the default: every batch size
    yield
    ck.select_simd(before)


def test_min_batch_setting():
    before = ck.matrix_kernel_min_batch(3)
    assert ck.matrix_kernel_min_batch(before) == 3
    with pytest.raises(ValueError, match="at least 1"):
        ck.matrix_kernel_min_batch(0)


def test_stream_max_batch_setting():
    before = ck.matrix_kernel_stream_max_batch(0)
    assert ck.matrix_kernel_stream_max_batch(before) == 0
    with pytest.raises(ValueError, match="at least 0"):
        ck.matrix_kernel_stream_max_batch(-1)


@pytest.mark.parametrize("name", GEMM_TYPES)
def test_streaming_the_weights_changes_no_bit(avx512, name):
    """Decoding batches (up to matrix_kernel_stream_max_batch rows) prefetch the weights ahead; the
    sums are the same with and without, at a batch inside the bound and one past it."""
    k = 32 * 37 if name not in SUPER_BLOCK_TYPES else 256 * 3
    raw = random_blocks(name, 21, k, seed=7)
    for n in (8, 40):
        x = np.random.default_rng(n).standard_normal((n, k)).astype(np.float32)
        before = ck.matrix_kernel_stream_max_batch(64)
        try:
            streamed = ck.matmul(raw, GGMLType[name], x)
            ck.matrix_kernel_stream_max_batch(0)
            cached = ck.matmul(raw, GGMLType[name], x)
        finally:
            ck.matrix_kernel_stream_max_batch(before)
        assert np.array_equal(streamed, cached)


def test_batch_types_have_a_matrix_kernel(avx512):
    for name in GEMM_TYPES:
        assert ck.type_info(GGMLType[name])["has_matrix_kernel"], name
    assert not ck.type_info(GGMLType.Q2_K)["has_matrix_kernel"]


@pytest.mark.parametrize("name", BLOCK32_TYPES)
@pytest.mark.parametrize("m, blocks, n", [
    (4, 4, 3), (4, 4, 4), (12, 8, 6), (17, 7, 5), (5, 1, 9), (33, 3, 8), (1, 5, 13), (16, 18, 12), (7, 2, 4)])
def test_block32_tiles_and_edges(avx512, name, m, blocks, n):
    """blocks: groups of 4, a pair and a single block left over (7 = 4 + 2 + 1); m and n around the
    4 x 3 register tile"""
    check_matmul(name, m, 32 * blocks, n)


@pytest.mark.parametrize("name", SUPER_BLOCK_TYPES)
@pytest.mark.parametrize("m, blocks, n", [(1, 1, 4), (3, 2, 8), (17, 1, 9), (5, 3, 17), (16, 4, 12), (2, 1, 31)])
def test_super_block_tiles_and_edges(avx512, name, m, blocks, n):
    check_matmul(name, m, 256 * blocks, n)


@pytest.mark.parametrize("name", FLOAT_TYPES)
@pytest.mark.parametrize("m, k, n", [(4, 16, 3), (5, 40, 4), (13, 100, 7), (1, 7, 5), (8, 256, 12)])
def test_float_tiles_and_edges(avx512, name, m, k, n):
    """k need not be a multiple of the 16 lanes"""
    check_matmul(name, m, k, n)


@pytest.mark.parametrize("name", GEMM_TYPES)
def test_matrix_kernel_agrees_with_dot_products(avx512, name):
    """The matrix kernel against the dot products per row (taken when the batch is below
    matrix_kernel_min_batch): the same integer sums, only the float order differs."""
    k = 1024
    raw = random_blocks(name, 24, k, seed=3)
    x = np.random.default_rng(4).standard_normal((11, k)).astype(np.float32)
    batch = ck.matmul(raw, GGMLType[name], x)
    before = ck.matrix_kernel_min_batch(len(x) + 1)
    try:
        rows = ck.matmul(raw, GGMLType[name], x)
    finally:
        ck.matrix_kernel_min_batch(before)
    w = np.abs(ck.dequantize(raw, GGMLType[name]).astype(np.float64))
    scale = np.abs(x.astype(np.float64)) @ w.T
    assert (np.abs(batch - rows) <= 2e-6 * scale + 1e-6).all()


@pytest.mark.parametrize("name", GEMM_TYPES)
def test_a_rows_result_does_not_depend_on_its_batch(avx512, name):
    """Every tile shape computes a row in the same order: a batch's rows are bit for bit those of
    each row alone, of any sub-batch, and of any thread count (what prefix reuse, packed embedding
    batches and a server batching requests together rely on)."""
    k = 32 * 37 if name not in SUPER_BLOCK_TYPES else 256 * 3  # 37 blocks: groups of 4, a pair, one
    raw = random_blocks(name, 21, k, seed=5)
    x = np.random.default_rng(6).standard_normal((13, k)).astype(np.float32)
    batch = ck.matmul(raw, GGMLType[name], x, n_threads=2)
    assert np.array_equal(batch, np.concatenate([ck.matmul(raw, GGMLType[name], x[i:i + 1]) for i in range(13)]))
    assert np.array_equal(batch, np.concatenate([ck.matmul(raw, GGMLType[name], x[:5], n_threads=1),
                                                 ck.matmul(raw, GGMLType[name], x[5:])]))


def test_extreme_levels_do_not_overflow(avx512):
    """Activations all -1 quantize to -128 in Q8_K (-127 in Q8_0) and weights of one sign to the
    extreme levels: Q6_K's four-product sums reach 4 * 63 * 128 = 32256, just inside the int16 the
    kernel narrows them to. The batch must match the dot products (which never narrow)."""
    k = 512
    x = -np.ones((4, k), np.float32)
    # the first of every 16 weights is the largest in magnitude and negative, so the rest quantize to
    # the top positive level (Q6_K: stored 63), four in a row
    top = np.full(k, 0.97, np.float32)
    top[::16] = -1.0
    w = np.stack([top, -top, np.linspace(-1, 1, k, dtype=np.float32)])
    for name in BLOCK32_TYPES + SUPER_BLOCK_TYPES:
        raw = ck.quantize(w, GGMLType[name])
        deq = ck.dequantize(raw, GGMLType[name])[0]
        assert (deq.reshape(-1, 4) == deq.max()).all(axis=1).any(), name
        batch = ck.matmul(raw, GGMLType[name], x)
        before = ck.matrix_kernel_min_batch(2)  # one row at a time: the dot products, which never narrow
        try:
            rows = np.concatenate([ck.matmul(raw, GGMLType[name], x[i:i + 1]) for i in range(len(x))])
        finally:
            ck.matrix_kernel_min_batch(before)
        assert np.allclose(batch, rows, rtol=1e-5, atol=1e-3), name
        assert np.abs(batch[:, 0]).min() > 200, name  # the sums are large: nothing cancelled to zero


@settings(max_examples=30, deadline=None, derandomize=True)
@given(name=st.sampled_from(GEMM_TYPES), m=st.integers(1, 20), blocks=st.integers(1, 3), n=st.integers(1, 20),
       seed=st.integers(0, 2**16))
def test_matrix_kernel_shapes_hypothesis(name, m, blocks, n, seed):
    check_matmul(name, m, 256 * blocks, n, seed=seed)
