"""Quantized types: dequantize and quantize bit-exact with the gguf package (llama.cpp's reference in
numpy), products against float64 numpy, every SIMD level against the generic C."""
from __future__ import annotations

import gguf as gguf_ref
import numpy as np
import pytest
from gguf import quants as ref_quants
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt4all_core import gguf
from gpt4all_core.backend import cpu_kernels as ck
from gpt4all_core.gguf import TYPE_TRAITS, GGMLType
from quant_checks import check_matmul, random_blocks

READ_TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
              "Q6_K", "IQ4_NL"]
GGUF_QUANTIZES = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
# Where each block keeps its fp16 scales (random bytes there could be NaN or Inf).
LEVELS = ck.supported_simd_levels()


def reference_dequantize(raw: np.ndarray, name: str) -> np.ndarray:
    return ref_quants.dequantize(raw, gguf_ref.GGMLQuantizationType[name]).astype(np.float32)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("name", READ_TYPES)
def test_dequantize_random_blocks_bit_exact(name):
    raw = random_blocks(name, 5, 512, seed=len(name))
    assert same_bits(ck.dequantize(raw, GGMLType[name]), reference_dequantize(raw, name))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the reference meets NaN scales too
@pytest.mark.parametrize("name", ["Q4_0", "Q5_1", "Q2_K", "Q6_K", "IQ4_NL"])
def test_dequantize_fully_random_bytes(name):
    """Scales may be NaN or Inf here: still the same numbers, NaN where the reference has NaN."""
    rng = np.random.default_rng(3)
    block_size, type_size = TYPE_TRAITS[GGMLType[name]]
    raw = rng.integers(0, 256, (8, 4 * type_size), dtype=np.uint8)
    ours, ref = ck.dequantize(raw, GGMLType[name]), reference_dequantize(raw, name)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert same_bits(np.where(np.isnan(ours), 0, ours), np.where(np.isnan(ref), 0, ref))


def test_dequantize_every_tensor_of_the_real_models(smollm2_path, gemma3_path):
    checked = set()
    for path in (smollm2_path, gemma3_path):
        with gguf.open(path) as f:
            for t in f.tensors.values():
                rows = t.data.reshape(-1, t.data.shape[-1]) if t.type.name not in ("F32", "F16") else None
                if rows is None:
                    rows = t.data.reshape(-1, t.shape[-1]).view(np.uint8)
                rows = rows[:4096]  # the largest tables are checked on their first 4096 rows
                assert same_bits(ck.dequantize(rows, t.type), reference_dequantize(np.asarray(rows), t.type.name)), t.name
                checked.add(t.type.name)
    assert checked == {"F32", "Q4_1", "Q8_0", "Q5_0", "Q4_K", "Q6_K"}


@pytest.mark.parametrize("name", GGUF_QUANTIZES)
def test_quantize_bit_exact_with_gguf(name):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((7, 256)) * rng.uniform(0.01, 10, (7, 1))).astype(np.float32)
    x[0, :32] = 0.0  # an all-zero block: scale 0, no division by zero
    x[1, 5] = 1e4  # one outlier
    ref = ref_quants.quantize(x, gguf_ref.GGMLQuantizationType[name]).view(np.uint8)
    assert np.array_equal(ck.quantize(x, GGMLType[name]), ref)


def test_activation_types():
    """Which activations each weight type's products use (quants.h says why)."""
    pairs = {name: ck.type_info(GGMLType[name])["activation_type"] for name in READ_TYPES}
    assert pairs == {"F32": "F32", "F16": "F32", "BF16": "F32", "Q4_0": "Q8_0", "Q4_1": "Q8_0S", "Q5_0": "Q8_0",
                     "Q5_1": "Q8_0S", "Q8_0": "Q8_0", "IQ4_NL": "Q8_0", "Q2_K": "Q8_K", "Q3_K": "Q8_K",
                     "Q4_K": "Q8_K", "Q5_K": "Q8_K", "Q6_K": "Q8_K"}


def test_q8_0s_is_q8_0_plus_exact_sums():
    x = np.random.default_rng(8).standard_normal((3, 256)).astype(np.float32)
    q8_0 = ck.quantize(x, GGMLType.Q8_0).reshape(3, -1, 34)
    q8_0s = ck.quantize(x, 31).reshape(3, -1, 36)  # 31: Q8_0S, ours
    assert np.array_equal(q8_0s[..., :2], q8_0[..., :2]) and np.array_equal(q8_0s[..., 4:], q8_0[..., 2:])
    sums = q8_0s[..., 2:4].copy().view(np.int16)[..., 0]
    assert np.array_equal(sums, q8_0[..., 2:].view(np.int8).sum(axis=-1))


@pytest.mark.parametrize("type_id", [GGMLType.Q8_0, 31])  # 31: Q8_0S
def test_activation_quantizers_are_the_same_bits_at_every_level(type_id):
    """The AVX-512 quantizers round as roundf (halves away from zero) through a trunc trick: values
    that land on .5, 127, zeros and tiny blocks included, every level gives the generic bytes."""
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((40, 576)) * rng.uniform(1e-6, 1e4, (40, 1))).astype(np.float32)
    x[0, :32] = np.arange(32, dtype=np.float32) - 15.5   # id = 127 / 16: x * id on many halves
    x[0, 32:64] = np.linspace(-127, 127, 32, dtype=np.float32) / 2   # whole and half steps
    x[1, :32], x[2, :32] = 0.0, np.float32(1e-38)
    before, out = ck.simd_level(), {}
    for level in LEVELS:
        ck.select_simd(level)
        out[level] = ck.quantize(x, type_id)
    ck.select_simd(before)
    for level in LEVELS:
        assert np.array_equal(out[level], out["generic"]), level


@pytest.mark.parametrize("name", ["Q8_0", "Q8_1", "Q8_K"])
def test_activation_quantizers_round_trip(name):
    """Q8 activations: within half a step of the input, plus (Q8_0, Q8_1) the fp16 rounding of the
    stored step, which moves a level q by up to |q| * 2^-11 steps (|q| <= 127)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 512)).astype(np.float32)
    back = ck.dequantize(ck.quantize(x, GGMLType[name]), GGMLType[name])
    block = TYPE_TRAITS[GGMLType[name]].block_size
    step = np.abs(x).reshape(3, -1, block).max(axis=-1, keepdims=True) / 127
    slack = 0.5 + (127 * 2**-11 if name != "Q8_K" else 1e-6)
    assert (np.abs(back - x).reshape(3, -1, block) <= step * slack).all()


DOT_TYPES = [t for t in READ_TYPES]


@pytest.mark.parametrize("name", DOT_TYPES)
@pytest.mark.parametrize("m, k, n", [(1, 256, 1), (17, 256, 3), (33, 512, 1), (5, 768, 9)])
def test_matmul_matches_float64(simd, name, m, k, n):
    check_matmul(name, m, k, n)


@pytest.mark.parametrize("name", DOT_TYPES)
def test_simd_levels_agree_with_generic(name):
    raw = random_blocks(name, 40, 1024, seed=9)
    x = np.random.default_rng(10).standard_normal((3, 1024)).astype(np.float32)
    before = ck.simd_level()
    results = {}
    for level in LEVELS:
        ck.select_simd(level)
        results[level] = ck.matmul(raw, GGMLType[name], x)
    ck.select_simd(before)
    w = np.abs(ck.dequantize(raw, GGMLType[name]).astype(np.float64))
    scale = np.abs(x.astype(np.float64)) @ w.T * 1.01 + 1e-6
    for level, y in results.items():
        assert (np.abs(y - results["generic"]) <= 1e-5 * scale).all(), level


def test_threads_give_the_same_result():
    raw = random_blocks("Q4_K", 64, 1024, seed=2)
    x = np.random.default_rng(2).standard_normal((4, 1024)).astype(np.float32)
    one = ck.matmul(raw, GGMLType.Q4_K, x, n_threads=1)
    assert np.array_equal(one, ck.matmul(raw, GGMLType.Q4_K, x, n_threads=2))  # rows split, not sums


@settings(max_examples=40, deadline=None, derandomize=True)
@given(name=st.sampled_from(DOT_TYPES), m=st.integers(1, 40), blocks=st.integers(1, 4), n=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_matmul_shapes_hypothesis(name, m, blocks, n, seed):
    check_matmul(name, m, 256 * blocks, n, seed=seed)


@pytest.mark.parametrize("name, dtype", [("F32", np.float32), ("F16", np.float16), ("BF16", np.uint16)])
def test_typed_weights_are_their_bytes(name, dtype):
    """Tensor.data of a float tensor is typed: products and lookups use its bytes, never cast values."""
    raw = random_blocks(name, 6, 64, seed=12)
    typed = raw.view(dtype)
    x = np.random.default_rng(13).standard_normal((2, 64)).astype(np.float32)
    t = GGMLType[name]
    assert np.array_equal(ck.matmul(typed, t, x), ck.matmul(raw, t, x))
    assert same_bits(ck.get_rows(typed, t, [5, 0]), ck.get_rows(raw, t, [5, 0]))
    assert same_bits(ck.dequantize(typed, t), ck.dequantize(raw, t))
    if name != "BF16":
        assert np.array_equal(ck.dequantize(typed, t), typed.astype(np.float32))


def test_get_rows_is_dequantize_of_the_rows():
    raw = random_blocks("Q6_K", 20, 512, seed=4)
    ids = np.array([3, 0, 19, 3], np.int32)
    assert same_bits(ck.get_rows(raw, GGMLType.Q6_K, ids), ck.dequantize(raw[ids], GGMLType.Q6_K))


@pytest.mark.parametrize("call, message", [
    (lambda: ck.dequantize(np.zeros((2, 17), np.uint8), GGMLType.Q4_0), "not whole Q4_0 blocks"),
    (lambda: ck.dequantize(np.zeros(18, np.uint8), 99), "not supported"),
    (lambda: ck.dequantize(np.zeros(18, np.uint8), "Q4_0"), "must be a GGMLType"),
    (lambda: ck.quantize(np.zeros((1, 48), np.float32), GGMLType.Q4_0), "not whole Q4_0 blocks"),
    (lambda: ck.quantize(np.zeros((1, 256), np.float32), GGMLType.Q8_K + 100), "not supported"),
    (lambda: ck.matmul(np.zeros((4, 18), np.uint8), GGMLType.Q4_0, np.zeros((2, 64), np.float32)), "x: expected"),
    (lambda: ck.matmul(np.zeros(18, np.uint8), GGMLType.Q4_0, np.zeros(32, np.float32)), "w: expected 2-D"),
    (lambda: ck.matmul(np.zeros((4, 144), np.uint8), GGMLType.Q8_K, np.zeros(256, np.float32)), "activation type"),
    (lambda: ck.matmul(np.zeros((4, 18), np.uint8), GGMLType.Q4_0, np.zeros(32, np.float32), n_threads=0),
     "n_threads"),
    (lambda: ck.get_rows(np.zeros((4, 18), np.uint8), GGMLType.Q4_0, [4]), r"\[0, 4\)"),
    (lambda: ck.get_rows(np.zeros((4, 18), np.uint8), GGMLType.Q4_0, [-1]), r"\[0, 4\)"),
    (lambda: ck.get_rows(np.zeros(18, np.uint8), GGMLType.Q4_0, [0]), "table: expected 2-D"),
])
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_half_converts_exactly_at_every_level():
    """All 65,536 halves, subnormals included (real Q6_K scales are mostly half subnormals), as
    numpy converts them; NaN stays NaN."""
    halves = np.arange(65536, dtype=np.uint16)
    ref = halves.view(np.float16).astype(np.float32)
    nan = np.isnan(ref)
    before = ck.simd_level()
    try:
        for level in LEVELS:
            ck.select_simd(level)
            got = ck.dequantize(halves.view(np.uint8).reshape(1, -1), GGMLType.F16).ravel()
            assert np.array_equal(got.view(np.uint32)[~nan], ref.view(np.uint32)[~nan]), level
            assert np.isnan(got[nan]).all(), level
    finally:
        ck.select_simd(before)
