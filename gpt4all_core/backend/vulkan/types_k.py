"""The K-quant weight types on Vulkan (Q2_K .. Q6_K, 256-element super-blocks): their device
layout and their shaders (shaders/k_mul_mv.comp, k_mul_mm.comp, k_get_rows.comp, with the
per-type decoding in shaders/kquants/), registered into products.REGISTRY on import.

Device layout. A matrix is repacked at upload into a few streams, one after another: the quants
of every row's 32-element groups as aligned uvec4 (4-bit) or uvec2 (2-bit) words, then the high
bits, scales and fp16 values in their own arrays (the shaders/kquants/*.glsl headers list each
type's streams). Within a group's words the bits are reordered so that a shader gets four quants
with one mask (one per byte: see shaders/kquants/k_common.glsl); nothing is widened, so the
device holds exactly the GGUF's bytes (plus at most 3 bytes of padding): matrix-vector products
read as little as the file has. A row's groups are adjacent, so the invocations that split a row
between them read it in coalesced 16-byte loads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gpt4all_core.backend.vulkan import products
from gpt4all_core.backend.vulkan.context import Caps, Dispatch, ceil_div, push_words
from gpt4all_core.backend.vulkan.ops import MAX_GROUPS

QK_K = 256
PACK_ROWS = 2048  # rows repacked at a time: bounds the temporaries of a 150k-row output matrix

# ---- the bit layouts within a 32-element group (the shaders' dequant_quarter reads these) ----
# In every GGUF K-quant block the quants lie in 32-byte runs where byte l holds element l of
# several groups (at different bits). Seen as 8 uint32 words, words 2k and 2k + 1 hold elements
# 8k .. 8k + 3 and 8k + 4 .. 8k + 7 of each group: all the reordering below is word-wide.

def _runs(b: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Bytes [start, stop) of each block [rows, blocks, bytes] as 32-byte runs of uint32 words
    [rows, blocks, runs, 8]."""
    return np.ascontiguousarray(b[..., start:stop]).view(np.uint32).reshape(b.shape[:2] + (-1, 8))


def _fields(run: np.ndarray, shift: int, mask: int) -> tuple[np.ndarray, np.ndarray]:
    """The field at `shift` of each element, in byte m of word k: of elements 8k + m, 8k + 4 + m."""
    return (run[..., 0::2] >> shift) & np.uint32(mask), (run[..., 1::2] >> shift) & np.uint32(mask)


def _nibble_words(run: np.ndarray, shift: int) -> np.ndarray:
    """4-bit fields -> uint32 [..., 4]: quarter k is word k, its byte m holds element 8k + m in the
    low nibble and 8k + 4 + m in the high one."""
    lo, hi = _fields(run, shift, 0x0F0F0F0F)
    return lo | (hi << 4)


def _two_bit_words(run: np.ndarray, shift: int) -> np.ndarray:
    """2-bit fields -> uint32 [..., 2]: quarter k in word k // 2, element m (< 4) at bits
    8m + 4 (k % 2) and element 4 + m two bits above."""
    lo, hi = _fields(run, shift, 0x03030303)
    t = lo | (hi << 2)
    return t[..., 0::2] | (t[..., 1::2] << 4)


def _high_bit_words(run: np.ndarray, shift: int) -> np.ndarray:
    """1-bit fields -> uint32 [...]: element 8k + m (m < 4) at bit 8m + 4 + k, element 8k + 4 + m
    at bit 8m + k (k_common.glsl's high_bits_lo/hi undo it)."""
    lo, hi = _fields(run, shift, 0x01010101)
    out = np.zeros(run.shape[:-1], np.uint32)
    for k in range(4):
        out |= (lo[..., k] << (4 + k)) | (hi[..., k] << k)
    return out


def _each_field(fn, run: np.ndarray, shifts, axis: int) -> np.ndarray:
    return np.stack([fn(run, s) for s in shifts], axis=axis)


# ---- each type's GGUF block -> its streams (arrays [rows, blocks, ...] in stream order) ----
# Block layouts (kernels/quants.h): Q2_K scales[16] qs[64] d dmin; Q3_K hmask[32] qs[64]
# scales[12] d; Q4_K d dmin scales[12] qs[128]; Q5_K d dmin scales[12] qh[32] qs[128];
# Q6_K ql[128] qh[64] scales[16] d.

def _q4_nibbles(b: np.ndarray, start: int) -> np.ndarray:
    """Q4_K/Q5_K: 32-byte run j holds sub-block 2j in its low nibbles and 2j + 1 in its high."""
    return _each_field(_nibble_words, _runs(b, start, start + 128), (0, 4), -2).reshape(b.shape[:2] + (8, 4))


def _two_bit_groups(b: np.ndarray, start: int) -> np.ndarray:
    """Q2_K/Q3_K qs, Q6_K qh: run h holds group 4h + j in bits 2j."""
    return _each_field(_two_bit_words, _runs(b, start, start + 64), (0, 2, 4, 6), -2).reshape(b.shape[:2] + (8, 2))


def _high_bit_groups(b: np.ndarray, start: int) -> np.ndarray:
    """Q3_K hmask, Q5_K qh: the one run holds group j in bit j."""
    return _each_field(_high_bit_words, _runs(b, start, start + 32), range(8), -1).reshape(b.shape[:2] + (8,))


def _split_q4_k(b: np.ndarray) -> list[np.ndarray]:
    return [_q4_nibbles(b, 16), b[..., :16]]


def _split_q5_k(b: np.ndarray) -> list[np.ndarray]:
    return [_q4_nibbles(b, 48), _high_bit_groups(b, 16), b[..., :16]]


def _split_q6_k(b: np.ndarray) -> list[np.ndarray]:
    # ql run 2h + a holds group 4h + a in its low nibbles and 4h + 2 + a in its high; qh as Q2_K
    low = _each_field(_nibble_words, _runs(b, 0, 128), (0, 4), -2)  # [.., run (h, a), nibble, 4]
    low = low.reshape(b.shape[:2] + (2, 2, 2, 4)).transpose(0, 1, 2, 4, 3, 5).reshape(b.shape[:2] + (8, 4))
    return [low, _two_bit_groups(b, 128), b[..., 192:208], b[..., 208:210]]


def _split_q2_k(b: np.ndarray) -> list[np.ndarray]:
    return [_two_bit_groups(b, 16), b[..., :16], b[..., 80:84]]


def _split_q3_k(b: np.ndarray) -> list[np.ndarray]:
    return [_two_bit_groups(b, 32), _high_bit_groups(b, 0), b[..., 96:108], b[..., 108:110]]


@dataclass(frozen=True)
class _KType:
    name: str
    ggml_type: int
    block_bytes: int
    stream_bytes: tuple[int, ...]  # bytes per super-block of each stream, in device order
    split: Callable[[np.ndarray], list[np.ndarray]]


K_TYPES = (
    _KType("q2_k", 10, 84, (64, 16, 4), _split_q2_k),
    _KType("q3_k", 11, 110, (64, 32, 12, 2), _split_q3_k),
    _KType("q4_k", 12, 144, (128, 16), _split_q4_k),
    _KType("q5_k", 13, 176, (128, 32, 16), _split_q5_k),
    _KType("q6_k", 14, 210, (128, 64, 16, 2), _split_q6_k),
)


def pack(t: _KType, raw: np.ndarray) -> np.ndarray:
    """GGUF rows (uint8 [n_out, row_bytes]) -> the device layout (uint32 words)."""
    raw = np.ascontiguousarray(raw, np.uint8)
    if raw.ndim != 2 or raw.shape[1] % t.block_bytes:
        raise ValueError(f"{t.name}: expected rows of whole {t.block_bytes}-byte blocks, got shape {raw.shape}")
    n, nb = raw.shape[0], raw.shape[1] // t.block_bytes
    out = np.zeros(ceil_div(n * nb * t.block_bytes, 4), np.uint32)
    out_bytes = out.view(np.uint8)
    starts = np.cumsum((0,) + t.stream_bytes) * n * nb
    for r0 in range(0, n, PACK_ROWS):
        r1 = min(n, r0 + PACK_ROWS)
        streams = t.split(raw[r0:r1].reshape(r1 - r0, nb, t.block_bytes))
        for s, size, start in zip(streams, t.stream_bytes, starts):
            out_bytes[start + r0 * nb * size:start + r1 * nb * size] = np.ascontiguousarray(s).reshape(-1).view(np.uint8)
    return out


# ---- dispatches ----

MV_MAX_COLS = 8   # columns one mv workgroup carries (more: more workgroups along z)
# (invocations splitting a row's groups, rows a workgroup owns: each X load reused, and more weight
# bytes in flight); Q4_K: 64 x 8 with the transposed sums read a tall matrix at 2,284-2,397 GB/s on
# an H100 where 128 x 8 read 2,174-2,285, and decoded a 6.7B Q4_K_M file as fast (gpu/tune_decode.py)
MV_SHAPE = {"q4_k": (64, 8)}
MV_SHAPE_DEFAULT = (64, 4)
# BM rows x BN columns per workgroup, TM x TN per invocation (multiples of 4): the narrower tile for
# buckets of up to 32 columns wastes no work on absent columns
MM_TILES = ((32, (64, 32, 4, 4)), (None, (64, 64, 4, 4)))
GET_ROWS_THREADS = 64


def _check_n_in(name: str, n_in: int) -> None:
    if n_in <= 0 or n_in % QK_K:
        raise ValueError(f"{name}: n_in = {n_in} must be a positive multiple of {QK_K}")


def _spread(n: int) -> tuple[int, int]:
    """n workgroups as an x * y grid within the per-dimension limit (shaders number them x + y * nx)."""
    y = ceil_div(n, MAX_GROUPS)
    return ceil_div(n, y), y


def _mv(t: _KType):
    def mv(caps: Caps, n_out: int, n_in: int, max_cols: int, fused: str = "") -> Dispatch:
        """fused: "" (the product) or one of products.FUSED_FORMS (products.fused_product)."""
        _check_n_in(t.name, n_in)
        (threads, rows), unroll = MV_SHAPE.get(t.name, MV_SHAPE_DEFAULT), 1
        if (tuned := products.mv_override(t.name, n_in)) is not None:
            threads, rows, unroll, split = tuned
            products.refuse_split(t.name, split)
        threads = min(threads, caps.max_workgroup_invocations)
        cols = max(1, min(max_cols, MV_MAX_COLS))
        rows = rows if cols == 1 else min(rows, 4)  # ROWS * COLS sums in registers
        rows, out_rows = products.mv_rows(rows, fused)
        sums = (rows + bool(fused)) * cols  # and a sum of squares per column when normalizing
        if sums * threads * 4 > caps.max_shared_bytes:  # the partial sums (one per subgroup at most)
            threads = max(1, caps.max_shared_bytes // (sums * 4))
        x, y = _spread(ceil_div(n_out, out_rows))
        return Dispatch(f"mul_mv_{t.name}{fused}", (x, y, ceil_div(max(1, max_cols), cols)),
                        products.mv_spec(threads, rows, cols, unroll, products.mv_halves(False),
                                         k_mode=products.mv_k_mode()))
    return mv


def _mm(t: _KType):
    def mm(caps: Caps, n_out: int, n_in: int, max_cols: int) -> Dispatch:
        _check_n_in(t.name, n_in)
        bm, bn, tm, tn = products.mm_override(caps, t.name) or next(tile for most, tile in MM_TILES
                                                                     if most is None or max_cols <= most)
        x, y = _spread(ceil_div(n_out, bm))
        return Dispatch(f"mul_mm_{t.name}", (x, y, ceil_div(max(1, max_cols), bn)),
                        ((bm // tm) * (bn // tn), bm, bn, tm, tn))
    return mm


def _get_rows(t: _KType):
    def get_rows(caps: Caps, n_in: int, n_rows: int, max_tokens: int, scale: float) -> Dispatch:
        _check_n_in(t.name, n_in)
        if not 1 <= max_tokens <= MAX_GROUPS:
            raise ValueError(f"get_rows_{t.name}: max_tokens = {max_tokens} must lie in [1, {MAX_GROUPS}]")
        groups = ceil_div(n_in // 32, GET_ROWS_THREADS)
        return Dispatch(f"get_rows_{t.name}", (groups, max_tokens, 1), (GET_ROWS_THREADS,),
                        push_words(n_in, n_rows, float(scale)))
    return get_rows


MM_MIN_COLS = 32  # below this mv (at most 8 columns a pass) reads the weights few enough times


for _t in K_TYPES:
    products.register(products.TypeKernels(
        ggml_type=_t.ggml_type, pack=lambda raw, t=_t: pack(t, raw), mv=_mv(_t), get_rows=_get_rows(_t),
        mm=_mm(_t), mm_min_cols=MM_MIN_COLS,
        mv_fused=products.fused_forms(_mv(_t))))
