"""The 32-element weight types on Vulkan: F32, F16, BF16 and the block quants Q4_0, Q4_1, Q5_0,
Q5_1, Q8_0 (registered into products.REGISTRY on import).

Device layout (shaders/types_32.glsl): a matrix's words hold first the quants of every block, row
by row, then each per-block scalar in an array of its own (halves two to a word, or words), so
that every load a shader makes is aligned and neighbouring threads read neighbouring words. Float
rows are padded with zeros to whole blocks of 32 elements, so that one shader walk serves all
types. BF16 stays two bytes an element (a bfloat16 is the high half of a float32: the shader
shifts it into place, exactly).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpt4all_core.backend.vulkan import products
from gpt4all_core.backend.vulkan.context import Caps, Dispatch, ceil_div, push_words
from gpt4all_core.gguf.types import GGMLType

BLOCK = 32           # elements of a block (and of a float row's padding unit)
MAX_GROUPS = 65535   # workgroups per grid dimension every Vulkan device takes
MV_MAX_COLS = 8      # columns one mv workgroup carries: ROWS * COLS sums a thread, in registers
MV_MAX_THREADS = 128
# One-unit blocks (Q4_x, Q5_x): 64 threads with 8 rows each kept 2.3 TB/s in flight on an H100
# against 1.3 TB/s for 128 x 4 (benchmarks/vulkan_products.py, a 233k x 4096 Q4_0 matrix)
MV_MAX_THREADS_ONE_UNIT = 64
# Split blocks give a short matrix more threads; a tall one fills the GPU without, and read a
# 233k-row Q4_0 matrix at 1,880 GB/s whole against 1,417 split on an H100
MV_SPLIT_ROWS = 16384
MM_TILE = 64         # rows (and, from 33 columns on, columns) of Y a mm workgroup owns
MM_MIN_COLS = 32     # below it mv, reading the weights ceil(cols / 8) times, keeps more of the GPU busy


@dataclass(frozen=True)
class Layout:
    """How one type's GGUF blocks become device words. quants: the byte range of a block holding
    its quants (whole words); scalars: the byte ranges of its per-block scalars, 2 bytes (halves,
    packed two to a word) or 4 (a word), each becoming an array after the quants, in this order."""
    name: str
    ggml_type: int
    block_bytes: int
    quants: tuple[int, int]
    scalars: tuple[tuple[int, int], ...]
    units: int     # uvec4 units a block (types_32.glsl): what a mv thread takes at a time
    mv_rows: int   # rows a mv workgroup owns: each thread keeps one unit of each in flight
    mv_split: int = 1        # units a one-unit block is cut into for mv matrices of < MV_SPLIT_ROWS rows
    mv_max_threads: int = 0  # mv threads at most in split blocks (0: as whole ones)

    @property
    def is_float(self) -> bool:
        return not self.scalars


LAYOUTS = [
    Layout("f32", GGMLType.F32, 4 * BLOCK, (0, 4 * BLOCK), (), units=4, mv_rows=2),
    Layout("f16", GGMLType.F16, 2 * BLOCK, (0, 2 * BLOCK), (), units=4, mv_rows=4),
    Layout("bf16", GGMLType.BF16, 2 * BLOCK, (0, 2 * BLOCK), (), units=4, mv_rows=4),
    # ggml blocks: d (half), [m (half)], [qh (32 fifth bits)], quants
    # Q4_0: 256 x 8 in halves of blocks decoded a 6.7B file 1.06x as fast as 64 x 8 in whole ones, with
    # quants widened as halves (the tunes of benchmarks/results/vulkan-NVIDIA-H100-80GB-HBM3-{f29f22c,8c0950d}.json)
    Layout("q4_0", GGMLType.Q4_0, 18, (2, 18), ((0, 2),), units=1, mv_rows=8, mv_split=2, mv_max_threads=256),
    Layout("q4_1", GGMLType.Q4_1, 20, (4, 20), ((0, 4),), units=1, mv_rows=8),
    Layout("q5_0", GGMLType.Q5_0, 22, (6, 22), ((2, 6), (0, 2)), units=1, mv_rows=8),
    Layout("q5_1", GGMLType.Q5_1, 24, (8, 24), ((4, 8), (0, 4)), units=1, mv_rows=8),
    # Q8_0: 128 x 4 decoded a 6.7B file at 167 t/s on an H100, 128 x 2 at 143 (gpu/tune_decode.py)
    Layout("q8_0", GGMLType.Q8_0, 34, (2, 34), ((0, 2),), units=2, mv_rows=4),
]
BY_TYPE = {int(layout.ggml_type): layout for layout in LAYOUTS}


def pack(layout: Layout, raw: np.ndarray) -> np.ndarray:
    """GGUF rows (uint8 [n_out, row_bytes]) to the device words of shaders/types_32.glsl."""
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.dtype != np.uint8:
        raise ValueError(f"{layout.name}: expected raw rows uint8 [n_out, row_bytes], got {raw.dtype} {raw.shape}")
    n_out, row_bytes = raw.shape
    if layout.is_float:
        elem = layout.block_bytes // BLOCK
        if row_bytes % elem:
            raise ValueError(f"{layout.name}: rows of {row_bytes} bytes are not whole elements of {elem}")
        padded = ceil_div(row_bytes, layout.block_bytes) * layout.block_bytes
        raw = np.pad(raw, ((0, 0), (0, padded - row_bytes))) if padded != row_bytes else raw
    elif row_bytes % layout.block_bytes:
        raise ValueError(f"{layout.name}: rows of {row_bytes} bytes are not whole blocks of {layout.block_bytes}")
    blocks = np.ascontiguousarray(raw).reshape(-1, layout.block_bytes)
    parts = [blocks[:, slice(*layout.quants)].reshape(-1)]
    for start, stop in layout.scalars:
        part = blocks[:, start:stop].reshape(-1)
        parts.append(np.pad(part, (0, -part.size % 4)))  # an odd count of halves: one spare
    return np.concatenate(parts).view(np.uint32)


def _grid(row_groups: int, col_groups: int) -> tuple[int, int, int]:
    """Row groups over x (and z past 65535: the shaders number them x + z * width), columns over y."""
    if col_groups > MAX_GROUPS:
        raise ValueError(f"{col_groups} column groups: at most {MAX_GROUPS}")
    z = ceil_div(row_groups, MAX_GROUPS)
    return (ceil_div(row_groups, z), col_groups, z)


def _pow2_at_least(n: int, low: int, high: int) -> int:
    p = low
    while p < min(n, high):
        p *= 2
    return p


def _mv(layout: Layout):
    def mv(caps: Caps, n_out: int, n_in: int, max_cols: int, fused: str = "") -> Dispatch:
        """fused: "" (the product) or one of products.FUSED_FORMS (products.fused_product)."""
        split = layout.mv_split if n_out < MV_SPLIT_ROWS else 1
        units = ceil_div(n_in, BLOCK) * layout.units * split
        most = MV_MAX_THREADS_ONE_UNIT if layout.units == 1 else MV_MAX_THREADS
        if split > 1:
            most = layout.mv_max_threads or most
        threads = _pow2_at_least(units, 32, min(most, caps.max_workgroup_invocations))
        rows, unroll = layout.mv_rows, 1
        if (tuned := products.mv_override(layout.name, n_in)) is not None:
            threads, rows, unroll, split = min(tuned[0], caps.max_workgroup_invocations), *tuned[1:]
            if layout.units != 1:  # only a one-unit block (16 bytes of nibbles) splits
                products.refuse_split(layout.name, split)
        cols = max(1, min(max_cols, MV_MAX_COLS))
        rows = rows if cols == 1 else min(rows, 4)  # ROWS * COLS sums in registers
        rows, out_rows = products.mv_rows(rows, fused)
        groups = _grid(ceil_div(n_out, out_rows), ceil_div(max(1, max_cols), cols))
        spec = products.mv_spec(threads, rows, cols, unroll, products.mv_halves(not layout.is_float), split)
        return Dispatch(f"mul_mv_{layout.name}{fused}", groups, spec, (n_out, n_in, 0, 0))
    return mv


def _mm(layout: Layout):
    def mm(caps: Caps, n_out: int, n_in: int, max_cols: int) -> Dispatch:
        bm, tm, tn = MM_TILE, 4, 4
        bn = MM_TILE if max_cols > MM_TILE // 2 else MM_TILE // 2
        if (tuned := products.mm_override(caps, layout.name)) is not None:
            bm, bn, tm, tn = tuned
        assert BLOCK * (bm + bn) * 4 <= caps.max_shared_bytes  # Ws and Xs: 16 KiB by default
        threads = (bm // tm) * (bn // tn)
        groups = _grid(ceil_div(n_out, bm), ceil_div(max_cols, bn))
        return Dispatch(f"mul_mm_{layout.name}", groups, (threads, bm, bn, tm, tn), (n_out, n_in, 0, 0))
    return mm


def _get_rows(layout: Layout):
    def get_rows(caps: Caps, n_in: int, n_rows: int, max_tokens: int, scale: float) -> Dispatch:
        threads = 64
        pieces = ceil_div(n_in, BLOCK) * 4  # 8 values a thread
        if max_tokens > MAX_GROUPS:
            raise ValueError(f"get_rows of {max_tokens} tokens: at most {MAX_GROUPS}")
        return Dispatch(f"get_rows_{layout.name}", (ceil_div(pieces, threads), max(1, max_tokens), 1), (threads,),
                        push_words(n_in, n_rows, float(scale)))
    return get_rows


for _layout in LAYOUTS:
    products.register(products.TypeKernels(
        ggml_type=int(_layout.ggml_type),
        pack=lambda raw, _layout=_layout: pack(_layout, raw),
        mv=_mv(_layout), mm=_mm(_layout), get_rows=_get_rows(_layout), mm_min_cols=MM_MIN_COLS,
        mv_fused=products.fused_forms(_mv(_layout))))
