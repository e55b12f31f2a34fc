"""Rows16 (kernels/rows16.c, rows16_avx512.c): Q4_0, Q4_1 and Q8_0 matrices repacked 16 rows at a
time, the product every decoder matrix of those types takes on AVX-512 VNNI. Checked against float64
numpy with check_matmul's data-derived bounds (random bytes: every level, random scales and mins),
for batch invariance (a row's bits do not depend on its batch or the thread count), generic against
AVX-512 (the same bits), and in whole models against the GGUF row layout ($GPT4ALL_CORE_CPU_ROWS16=0)."""
from __future__ import annotations

import numpy as np
import pytest

from gpt4all_core import models
from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.backend.cpu_kernels import ROWS16_ENV
from gpt4all_core.gguf import GGMLType

from model_files import dequantized, requantized_smollm2
from quant_checks import random_blocks

Q4_1, Q8_0S = int(GGMLType.Q4_1), 31
TYPES = ["Q4_0", "Q4_1", "Q8_0"]


def product(name: str, m: int, blocks: int, n: int, seed: int, n_threads: int | None = None):
    raw = random_blocks(name, m, 32 * blocks, seed)
    x = np.random.default_rng(seed + 1).standard_normal((n, 32 * blocks)).astype(np.float32)
    t = int(GGMLType[name])
    return raw, x, ck.matmul_rows16(ck.repack_rows16(raw, t), t, x, n_threads=n_threads)


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("m, blocks, n", [(16, 1, 1), (16, 3, 4), (32, 18, 8), (48, 5, 13), (64, 2, 40),
                                          (1536, 18, 3)])
def test_rows16_matches_float64(simd, name, m, blocks, n):
    raw, x, y = product(name, m, blocks, n, seed=m + blocks + n)
    w = ck.dequantize(raw, GGMLType[name]).astype(np.float64)
    x_q = ck.dequantize(ck.quantize(x, Q8_0S), Q8_0S).astype(np.float64)
    assert y.shape == (n, m) and y.dtype == np.float32
    scale = np.abs(x_q) @ np.abs(w).T
    assert (np.abs(y - x_q @ w.T) <= 1e-5 * scale + 1e-6).all()


@pytest.mark.parametrize("name", TYPES)
def test_a_rows_bits_do_not_depend_on_its_batch_or_threads(name):
    raw, x, y = product(name, 96, 7, 21, seed=5, n_threads=2)
    t = int(GGMLType[name])
    packed = ck.repack_rows16(raw, t)
    alone = np.stack([ck.matmul_rows16(packed, t, x[j], n_threads=1) for j in range(len(x))])
    assert np.array_equal(y, alone)
    assert np.array_equal(ck.matmul_rows16(packed, t, x[5:14], n_threads=2), y[5:14])


@pytest.mark.parametrize("name", TYPES)
def test_generic_and_avx512_give_the_same_bits(name):
    if "avx512" not in ck.supported_simd_levels():
        pytest.skip("this CPU has no AVX-512 VNNI: the generic form is the only one")
    t = int(GGMLType[name])
    raw = random_blocks(name, 32, 64 * 32, 9)
    packed = ck.repack_rows16(raw, t)
    x = np.random.default_rng(3).standard_normal((11, 64 * 32)).astype(np.float32) * 4
    before = ck.simd_level()
    try:
        ys = {}
        for level in ("generic", "avx512"):
            ck.select_simd(level)
            ys[level] = ck.matmul_rows16(packed, t, x)
            assert ck.rows16_supported(t) == (level == "avx512")
        assert not ck.rows16_supported(int(GGMLType.Q5_0))
    finally:
        ck.select_simd(before)
    assert np.array_equal(ys["generic"], ys["avx512"])


# (type, bytes of a block, where its d, m and quants lie in the GGUF block; Q8_0's quants are stored sign-flipped)
LAYOUTS = [("Q4_0", 18, 0, None, 2, 0), ("Q4_1", 20, 0, 2, 4, 0), ("Q8_0", 34, 0, None, 2, 0x80)]


@pytest.mark.parametrize("name, size, d_at, m_at, q_at, flip", LAYOUTS)
def test_repack_is_the_same_bytes_in_another_order(name, size, d_at, m_at, q_at, flip):
    raw = random_blocks(name, 32, 96, 2)
    packed = ck.repack_rows16(raw, int(GGMLType[name]))
    assert packed.shape == raw.shape
    group0_block0 = packed.reshape(-1)[:16 * size]  # 16 d, (Q4_1) 16 m, then the quant words of 16 rows
    assert np.array_equal(group0_block0[:32].reshape(16, 2), raw[:16, d_at:d_at + 2])
    quants_at = 32 if m_at is None else 64
    if m_at is not None:
        assert np.array_equal(group0_block0[32:64].reshape(16, 2), raw[:16, m_at:m_at + 2])
    words = (size - q_at) // 4
    for w in range(words):
        got = group0_block0[quants_at + 64 * w:quants_at + 64 * (w + 1)].reshape(16, 4)
        assert np.array_equal(got ^ flip, raw[:16, q_at + 4 * w:q_at + 4 * w + 4])
    if not flip:  # nothing is changed, only moved
        assert np.array_equal(np.sort(packed, axis=None), np.sort(raw, axis=None))


@pytest.mark.parametrize("call, match", [
    (lambda: ck.repack_rows16(random_blocks("Q4_1", 24, 64, 0), Q4_1), "24 rows"),
    (lambda: ck.repack_rows16(random_blocks("Q5_0", 16, 64, 0), int(GGMLType.Q5_0)), "Q4_0, Q4_1, Q8_0 only"),
    (lambda: ck.matmul_rows16(random_blocks("Q4_1", 16, 64, 0), Q4_1, np.zeros(32, np.float32)), r"x: expected"),
    (lambda: ck.matmul_rows16(random_blocks("Q4_1", 8, 64, 0), Q4_1, np.zeros(64, np.float32)),
     "8 rows, not a positive multiple of 16"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0", "Q4_0"])
def test_smollm2_with_rows16_is_as_close_to_exact_as_without(smollm2_path, monkeypatch, qtype):
    """The decoder repacks SmolLM2's Q4_1, Q8_0 and Q4_0 matrices (576, 192, 1536 and 49152 rows: all
    of them) unless $GPT4ALL_CORE_CPU_ROWS16=0; the Q4_1 file's output head is Q8_0, the others are
    the gguf package's requantizations. Only the float order of each sum changes (and Q4_0's and
    Q8_0's activations carry their sum), which the 8-bit activations of later layers then round
    differently; so both layouts are held against the same weights dequantized to F32 (no activation
    quantization) and rows16 must be as close as the GGUF layout, within a quarter (as test_llama.py
    holds us against llama.cpp)."""
    path = smollm2_path if qtype == "Q4_1" else requantized_smollm2(qtype)
    tokens = np.array([1, 504, 3458, 282, 260, 2114, 30, 9023, 314, 1345, 28, 253, 4412, 30], np.int32)
    pos = np.arange(len(tokens), dtype=np.int32)

    def logits(path):
        with models.load(path) as model:
            return model.decoder.forward(model.new_cache(32), tokens, pos, pos, len(tokens), len(tokens))
    exact = logits(dequantized(path))
    err = {}
    for value in ("1", "0"):
        monkeypatch.setenv(ROWS16_ENV, value)
        err[value] = np.abs(logits(path) - exact).mean()
    assert err["1"] != err["0"]  # the repacked product did run
    assert err["1"] <= 1.25 * err["0"], err
    monkeypatch.setenv(ROWS16_ENV, "yes")
    with pytest.raises(ValueError, match=ROWS16_ENV):
        models.load(path)


def test_only_read_only_file_maps_are_unmapped(tmp_path, smollm2_path):
    """The decoder unmaps a repacked matrix's source pages (MADV_DONTNEED) only where they are a
    read-only map of a file, which reads back the same bytes; in anonymous memory (or a private
    writable map) that would zero them. The GGUF's tensors qualify, arrays of the caller's do not."""
    import mmap

    from gpt4all_core import gguf
    from gpt4all_core.backend.cpu_kernels import _in_read_only_file_map

    path = tmp_path / "bytes"
    path.write_bytes(bytes(range(256)) * 64)
    with open(path, "rb") as f:
        read_only = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        private = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    assert _in_read_only_file_map(np.frombuffer(read_only, np.uint8)[4096:].reshape(-1, 64)[3:])
    assert not _in_read_only_file_map(np.frombuffer(private, np.uint8))
    assert not _in_read_only_file_map(np.arange(4096, dtype=np.uint8)[16:])
    with gguf.open(smollm2_path) as g:
        assert _in_read_only_file_map(g.tensors["blk.0.ffn_up.weight"].data)
    read_only.close()
    private.close()
