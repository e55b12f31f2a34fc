"""Matrix products and get_rows of the 32-element weight types on Vulkan (types_32.py; shaders
mul_mv_32, mul_mm_32, get_rows_32) against float64 products of the CPU kernels' dequantized
weights, on random weights quantized by the CPU kernels and random activations.

Every output is poisoned with NaN first: the columns (rows of Y) past the batch's count must come
back NaN, every other element must be written and right."""
from __future__ import annotations

import numpy as np
import pytest
from vulkan_runs import poisoned

from gpt4all_core.backend import cpu_kernels
from gpt4all_core.backend.vulkan import products, types_32
from gpt4all_core.backend.vulkan.context import Dispatch, make_params, run_dispatch
from gpt4all_core.backend.vulkan.ops import COLS_LOGITS, COLS_TOKENS
from gpt4all_core.gguf.types import GGMLType as T

TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
FLOATS = (T.F32, T.F16, T.BF16)
# quantized rows are whole blocks of 32; float rows may be anything (45: not even a vec4)
SIZES = [(t, n_in) for t in TYPES for n_in in (96, 4096)] + [(t, 45) for t in FLOATS]
N_OUT = 67  # odd: a partial row group and a partial row tile

# The shaders dequantize as the CPU does (exactly, or within an ulp where Q4_1/Q5_1 take an fma
# for d * q + m), then sum in float32. The classic bound for a float32 dot product is
# |fl(w.x) - w.x| <= gamma_n |w|.|x| with gamma_n ~ n * 2^-24 (2.4e-4 for n = 4096) in the worst
# case; rounding errors of random data cancel (they grow like sqrt(n)), and what we measure is
# below 3e-7 of |w|.|x| even for mm's single chain of 4096 fmas a sum. 1e-5 leaves room for a
# device's own summation order and still catches any wrong element (off by a whole term or more).
REL = 1e-5


def random_weights(ggml_type, n_out, n_in, seed):
    rng = np.random.default_rng(seed)
    raw = cpu_kernels.quantize(rng.standard_normal((n_out, n_in)).astype(np.float32), ggml_type)
    return raw, cpu_kernels.dequantize(raw, ggml_type).astype(np.float64)


def random_x(max_cols, n_in, seed):
    return np.random.default_rng(seed + 1).standard_normal((max_cols, n_in)).astype(np.float32)


def run_product(vk, ggml_type, kind, raw, x, y, cols, col_source=COLS_TOKENS, accumulate=False, spec=None):
    """Y after one mv or mm dispatch over the first cols of x's max_cols columns. The other count
    (n_logits for tokens, n_tokens for logits) is max_cols: reading the wrong one writes columns
    that must stay untouched. spec: other specialization constants than types_32 picks."""
    kernels = products.REGISTRY[int(ggml_type)]
    max_cols, n_in = x.shape
    n_out = y.shape[1]
    d = (kernels.mm if kind == "mm" else kernels.mv)(vk.caps, n_out, n_in, max_cols)
    assert d.shader == f"mul_{kind}_{T(ggml_type).name.lower()}"
    groups, spec = d.groups, spec or d.spec
    if spec != d.spec:  # mv: (threads, rows, cols) a workgroup; mm: (threads, tile rows, tile cols, ...)
        groups = (-(-n_out // spec[1]), -(-max_cols // spec[2]), 1)
    d = Dispatch(d.shader, groups, spec, (n_out, n_in, col_source, int(accumulate)))
    counts = dict(n_tokens=cols, n_logits=max_cols) if col_source == COLS_TOKENS else \
        dict(n_tokens=max_cols, n_logits=cols)
    params = make_params(max_cols, **counts)
    return run_dispatch(vk, d, [kernels.pack(raw), x, y], [2], params=params)[0]


def assert_product(out, prior, w, x, cols):
    """out[:cols] = prior + x @ w.T within REL of |x| @ |w|.T; out[cols:] still NaN."""
    x64 = x[:cols].astype(np.float64)
    expected = prior[:cols].astype(np.float64) + x64 @ w.T
    bound = REL * (np.abs(x64) @ np.abs(w).T)
    err = np.abs(out[:cols] - expected)
    assert np.all(err <= bound), f"worst error {np.nanmax(err / bound) * REL:.2e} of |w|.|x|, NaNs {np.isnan(err).sum()}"
    assert np.isnan(out[cols:]).all()


@pytest.mark.parametrize("ggml_type, n_in", SIZES, ids=[f"{t.name}-{n}" for t, n in SIZES])
def test_mv_against_float64(vk, ggml_type, n_in):
    """1, 2, 5 and 8 columns of a dispatch sized for 8; one column sized for one; 11 of 12 (two
    column groups)."""
    w_raw, w = random_weights(ggml_type, N_OUT, n_in, seed=n_in)
    for cols, max_cols in ((1, 8), (2, 8), (5, 8), (8, 8), (1, 1), (11, 12)):
        x = random_x(max_cols, n_in, seed=cols)
        out = run_product(vk, ggml_type, "mv", w_raw, x, poisoned(max_cols, N_OUT), cols)
        assert_product(out, np.zeros_like(out), w, x, cols)


@pytest.mark.parametrize("ggml_type, n_in", SIZES, ids=[f"{t.name}-{n}" for t, n in SIZES])
def test_mm_against_float64(vk, ggml_type, n_in):
    """37 columns of 64 (a partial column tile), and 5 of 32 (the narrower tile)."""
    w_raw, w = random_weights(ggml_type, N_OUT, n_in, seed=n_in)
    for cols, max_cols in ((37, 64), (5, 32)):
        x = random_x(max_cols, n_in, seed=cols)
        out = run_product(vk, ggml_type, "mm", w_raw, x, poisoned(max_cols, N_OUT), cols)
        assert_product(out, np.zeros_like(out), w, x, cols)


@pytest.mark.parametrize("kind, max_cols", [("mv", 8), ("mm", 64)])
@pytest.mark.parametrize("ggml_type", [T.Q4_1, T.F16], ids=["Q4_1", "F16"])
def test_accumulate_onto_logit_columns(vk, ggml_type, kind, max_cols):
    """accumulate = 1 adds to what Y held; col_source = COLS_LOGITS counts n_logits columns."""
    n_in, cols = 96, max_cols - 3
    w_raw, w = random_weights(ggml_type, N_OUT, n_in, seed=7)
    x = random_x(max_cols, n_in, seed=8)
    prior = poisoned(max_cols, N_OUT)
    prior[:cols] = np.random.default_rng(9).standard_normal((cols, N_OUT))
    out = run_product(vk, ggml_type, kind, w_raw, x, prior, cols, col_source=COLS_LOGITS, accumulate=True)
    assert_product(out, prior, w, x, cols)


SHAPES = [("mv", (32, 1, 3)), ("mv", (256, 8, 2)), ("mm", (64, 64, 64, 8, 8)), ("mm", (128, 32, 64, 4, 4)),
          ("mm", (128, 64, 128, 8, 8))]


@pytest.mark.parametrize("kind, spec", SHAPES, ids=[f"{k}-{'-'.join(map(str, s))}" for k, s in SHAPES])
@pytest.mark.parametrize("ggml_type", [T.Q5_0, T.F32], ids=["Q5_0", "F32"])
def test_other_workgroup_shapes(vk, ggml_type, kind, spec):
    """Workgroup sizes, rows, columns and tiles (specialization constants) a device may be tuned
    to instead of the defaults: one row a workgroup, 3 columns of 8; 8 rows over 256 threads;
    8x8 sums a thread; tiles of 32 x 64 and 64 x 128 (24 KiB of shared memory)."""
    n_in, max_cols = 4096, 8 if kind == "mv" else 64
    w_raw, w = random_weights(ggml_type, N_OUT, n_in, seed=5)
    for cols in (max_cols, max_cols - 3):
        x = random_x(max_cols, n_in, seed=cols)
        out = run_product(vk, ggml_type, kind, w_raw, x, poisoned(max_cols, N_OUT), cols, spec=spec)
        assert_product(out, np.zeros_like(out), w, x, cols)


def test_more_row_groups_than_one_grid_dimension_holds(vk):
    """65535 row groups of Q4_0 and one more row: spread over x and z."""
    rows = products.REGISTRY[T.Q4_0].mv(vk.caps, 64, 32, 1).spec[1]  # rows a workgroup
    n_out, n_in = 65535 * rows + 3, 32
    w_raw, w = random_weights(T.Q4_0, n_out, n_in, seed=1)
    d = products.REGISTRY[T.Q4_0].mv(vk.caps, n_out, n_in, 1)
    assert d.groups[2] > 1
    x = random_x(1, n_in, seed=2)
    out = run_product(vk, T.Q4_0, "mv", w_raw, x, poisoned(1, n_out), 1)
    assert_product(out, np.zeros_like(out), w, x, 1)


@pytest.mark.parametrize("ggml_type", TYPES, ids=[t.name for t in TYPES])
@pytest.mark.parametrize("n_out", [67, 152064, 262144, 1 << 22])
def test_grids_cover_every_row_within_device_limits(vk, ggml_type, n_out):
    """Pure arithmetic on the Dispatch: up to 4M rows (a 256k vocabulary and beyond), 1..512 columns."""
    kernels = products.REGISTRY[ggml_type]
    for max_cols in (1, 8, 12, 64, 512):
        d = products.product(vk.caps, ggml_type, n_out, 4096, max_cols)
        assert d.shader.startswith("mul_mm" if max_cols >= kernels.mm_min_cols else "mul_mv")
        assert max(d.groups) <= types_32.MAX_GROUPS
        rows, cols = d.spec[1], d.spec[2]  # mv: rows and columns a workgroup; mm: the tile's
        assert d.groups[0] * d.groups[2] * rows >= n_out and d.groups[1] * cols >= max_cols


@pytest.mark.parametrize("ggml_type, n_in", [(t, 96) for t in TYPES] + [(t, 45) for t in FLOATS],
                         ids=[f"{t.name}-96" for t in TYPES] + [f"{t.name}-45" for t in FLOATS])
def test_get_rows_scaled(vk, ggml_type, n_in):
    """Rows at both ends of a 50-row table, a repeat, and ids outside it (rows of zeros); tokens
    past n_tokens are left alone."""
    n_rows, max_tokens, scale = 50, 9, 0.75
    ids = [0, 49, 17, 49, -1, 50, 0]
    raw, table = random_weights(ggml_type, n_rows, n_in, seed=3)
    kernels = products.REGISTRY[ggml_type]
    d = kernels.get_rows(vk.caps, n_in, n_rows, max_tokens, scale)
    y = np.full((max_tokens, n_in), np.nan, np.float32)
    params = make_params(max_tokens, n_tokens=len(ids), tokens=ids)
    out = run_dispatch(vk, d, [kernels.pack(raw), y], [1], params=params)[0]
    expected = np.array([table[i] * scale if 0 <= i < n_rows else np.zeros(n_in) for i in ids])
    # one or two float32 roundings of values up to max |table|
    assert np.all(np.abs(out[:len(ids)] - expected) <= 2.0 ** -22 * np.abs(table).max())
    assert np.isnan(out[len(ids):]).all()


def test_pack_puts_quants_first_then_each_scalar_array():
    """Q5_1 rows of 2 blocks: 8 quant words a row, then the 32 high bits of each block, then d|m."""
    raw, _ = random_weights(T.Q5_1, 3, 64, seed=4)
    words = types_32.pack(types_32.BY_TYPE[T.Q5_1], raw)
    blocks = raw.reshape(6, 24)
    assert words.size == 6 * 4 + 6 + 6
    assert np.array_equal(words[:24].view(np.uint8), blocks[:, 8:].reshape(-1))
    assert np.array_equal(words[24:30].view(np.uint8), blocks[:, 4:8].reshape(-1))
    assert np.array_equal(words[30:].view(np.uint8), blocks[:, :4].reshape(-1))


def test_pack_refuses_partial_blocks():
    with pytest.raises(ValueError, match="not whole blocks of 18"):
        types_32.pack(types_32.BY_TYPE[T.Q4_0], np.zeros((2, 20), np.uint8))
