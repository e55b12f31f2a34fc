"""Matrix products on Vulkan: for each weight type, how its blocks are laid out on the device and
which shaders multiply by them (one table, as kernels/quant_traits.c is for the CPU).

Contract of every type's shaders (bindings after the parameter buffer at 0):
- mul_mv_<type> and mul_mm_<type>: 1 W (the packed weight words), 2 X (float [cols, n_in]),
  3 Y (float [cols, n_out]); push constants {uint n_out, n_in, col_source, accumulate}: cols is
  n_cols(col_source) from shaders/common.glsl, and accumulate = 1 adds the product to Y instead of
  overwriting it. mv is for few columns (one to a few tokens), mm for prompt batches; both give
  the same function.
- get_rows_<type>: 1 W, 2 Y (float [n_tokens, n_in]); push {uint n_in, n_rows, float scale}: row
  t of Y is row P.values[PARAM_TOKEN, t] of W, dequantized, times scale.
- mul_mv_<type>_norm: as mul_mv, of rms_norm(X) * gamma (4 gamma [n_in]); mul_mv_<type>_norm_glu:
  W is the gate matrix with the up matrix stacked under it (2 n_out rows) and Y = act(gate) * up
  of the normalized X. Their specialization constants have ACT (0 silu, 1 gelu) and EPS at ids 3
  and 4. mul_mv_<type>_norm_rope: as _norm, then RoPE and where the result goes (RopeOut: ids 8
  to 12; 5 FREQS, the table of ops.rope_freqs).

<type> is the lower-cased GGML type name (f32, f16, q4_0, q4_k, ...).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from gpt4all_core.backend.env import flag
from gpt4all_core.backend.vulkan.context import Caps, Dispatch


@dataclass(frozen=True)
class TypeKernels:
    """One weight type on Vulkan.

    pack(raw) turns the GGUF rows (uint8 [n_out, row_bytes]) into the device layout (uint32 words,
    1-D). mv, mm: (caps, n_out, n_in, max_cols) -> Dispatch for a product over up to max_cols
    columns. get_rows: (caps, n_in, n_rows, max_tokens, scale) -> Dispatch. mm_min_cols: from how
    many columns mm is used (when there is one)."""
    ggml_type: int
    pack: Callable[[np.ndarray], np.ndarray]
    mv: Callable[[Caps, int, int, int], Dispatch]
    get_rows: Callable[[Caps, int, int, int, float], Dispatch]
    mm: Callable[[Caps, int, int, int], Dispatch] | None = None
    mm_min_cols: int = 16
    mv_fused: Callable[[Caps, int, int, int, str], Dispatch] | None = None  # (..., form): the _norm forms


REGISTRY: dict[int, TypeKernels] = {}


def _shape_items(variable: str, lengths: tuple[int, ...], usage: str):
    """(item, lower-cased name, numbers) of each comma-separated NAME=AxBx... of $variable, whose
    count of numbers is one of lengths; a malformed item is refused with the variable and usage."""
    for item in filter(None, (s.strip() for s in os.environ.get(variable, "").split(","))):
        name, _, value = item.partition("=")
        parts = value.split("x")
        if len(parts) not in lengths or not all(v.isdigit() for v in parts):
            raise ValueError(f"${variable}: {item!r} is not {usage}")
        yield item, name.strip().lower(), tuple(int(v) for v in parts)


# "q4_0=128x4,q8_0=256x2x2,q4_0@11008=32x2x4x2": mv threads x rows [x unroll [x split]] per type, or
# per type and row length (n_in), which wins over the type's
MV_ENV = "GPT4ALL_CORE_VULKAN_MV"


def mv_override(type_name: str, n_in: int | None = None) -> tuple[int, int, int, int] | None:
    """(threads, rows, unroll, split) of type_name's matrix-vector workgroups (on rows of n_in) as
    $GPT4ALL_CORE_VULKAN_MV sets them (benchmarks/gpu/tune_decode.py tries shapes this way), or None:
    the type's own. unroll: how many of its units a thread loads before using them; split: units a
    block of the 4- and 5-bit 32-element types (1, 2 or 4); both 1 when not given."""
    found: dict[str, tuple[int, int, int, int]] = {}
    usage = "TYPE[@N_IN]=THREADSxROWS[xUNROLL[xSPLIT]] (like q4_0=128x4)"
    for item, name, numbers in _shape_items(MV_ENV, (2, 3, 4), usage):
        key, at, length = name.partition("@")
        if at and not length.isdigit():
            raise ValueError(f"${MV_ENV}: {item!r} is not {usage}")
        t, r, u, sp = numbers + (1,) * (4 - len(numbers))
        if t < 1 or t & (t - 1) or t > 1024 or not 1 <= r <= 8 or not 1 <= u <= 4 or sp not in (1, 2, 4):
            raise ValueError(f"${MV_ENV}: {item!r}: threads must be a power of two up to 1024, rows 1 to 8, "
                             "unroll 1 to 4, split 1, 2 or 4")
        found[key + at + length] = (t, r, u, sp)
    return found.get(f"{type_name}@{n_in}", found.get(type_name))


# "q4_0=128x128x8x8,q4_k=128x64x8x4": matrix-matrix tiles per type, BM rows x BN columns a workgroup,
# TM x TN a thread (benchmarks/vulkan.py --kernel-settings times them), in place of the type's own
MM_ENV = "GPT4ALL_CORE_VULKAN_MM"


def mm_override(caps: Caps, type_name: str) -> tuple[int, int, int, int] | None:
    """(BM, BN, TM, TN) of type_name's matrix-matrix workgroups as $GPT4ALL_CORE_VULKAN_MM sets them, or
    None: the type's own. TM and TN are 4 or 8 and divide BM and BN; the workgroup ((BM / TM) *
    (BN / TN) threads) and its tiles in shared memory (32 (BM + BN) floats) must fit the device."""
    for item, name, (bm, bn, tm, tn) in _shape_items(MM_ENV, (4,), "TYPE=BMxBNxTMxTN (like q4_0=128x128x8x8)"):
        if tm not in (4, 8) or tn not in (4, 8) or bm < tm or bn < tn or bm % tm or bn % tn:
            raise ValueError(f"${MM_ENV}: {item!r}: TM and TN must be 4 or 8 and divide BM and BN")
        threads, shared = (bm // tm) * (bn // tn), 32 * (bm + bn) * 4
        if threads > caps.max_workgroup_invocations or shared > caps.max_shared_bytes:
            raise ValueError(f"${MM_ENV}: {item!r}: {threads} threads and {shared} bytes of shared memory; "
                             f"the device takes {caps.max_workgroup_invocations} and {caps.max_shared_bytes}")
        if name == type_name:
            return bm, bn, tm, tn
    return None


def refuse_split(type_name: str, split: int) -> None:
    """A split ($MV_ENV's fourth field) cuts the 16-byte blocks of Q4_0, Q4_1, Q5_0 and Q5_1 only."""
    if split != 1:
        raise ValueError(f"${MV_ENV}: a split ({split}) is for Q4_0, Q4_1, Q5_0 and Q5_1 rows, not {type_name}")


# "1": the quantized types' quants become floats two at a time in mv products (shaders/halves.glsl:
# half the integer instructions), "0": one at a time; unset: each type's default (on for the
# 32-element quants, where an H100 read 3-5% faster; off for the K-quants: on an H100 its biased
# form, halves.glsl's *_biased, read a tall Q4_K matrix no faster at 128 x 8 and 8% slower at 64 x 8
# with the transposed sums, and decoded a 6.7B Q4_K_M file at 0.988x)
HALVES_ENV = "GPT4ALL_CORE_VULKAN_HALVES"
# "0": K-quant mv products scale each quant before the dot (as their matrix-matrix products do),
# for A/B runs; unset or "1": they scale each part's dot once and add its offset times X's sum
# (shaders/k_mul_mv.comp's AFFINE: half the float instructions an element)
AFFINE_ENV = "GPT4ALL_CORE_VULKAN_AFFINE"
# "1": K-quant mv threads take each run of 64 groups in k_mul_mv.comp's sorted order (a subgroup's
# Q4_K/Q5_K scales unpacked one way; no faster on an H100: 2,089 against 2,116 GB/s); unset or "0":
# in row order
KSORT_ENV = "GPT4ALL_CORE_VULKAN_KSORT"
# "0": K-quant mv workgroups add their partial sums with one subgroupAdd each, for A/B runs; unset
# or "1": in one transposing pass of shuffles (k_mul_mv.comp's TRANSPOSED: 9 shuffles for 8 sums
# on 32 lanes where the subgroupAdds took 40; on an H100 a tall Q4_K matrix read 5-7% faster at
# 128 x 8 threads x rows, 0-4% at 64 x 8)
KTRANSPOSE_ENV = "GPT4ALL_CORE_VULKAN_KTRANSPOSE"


MV_SPEC_DEFAULTS = (1, 0, 1)  # UNROLL, HALVES, SPLIT or K_MODE (ids 5 to 7) as the shaders declare them


def mv_spec(threads: int, rows: int, cols: int, unroll: int, halves: bool = False, split: int = 1,
            k_mode: int | None = None) -> tuple[int, ...]:
    """A mv shader's specialization constants: WG, ROWS, COLS, then (ids 3 and 4 are the fused
    forms' ACT and EPS) UNROLL (id 5), HALVES (id 6) and id 7 up to the last that is not its
    default (MV_SPEC_DEFAULTS). Id 7 is SPLIT in the 32-element types' shader and K_MODE in the
    K-quants' (whose blocks are never split: mv_k_mode())."""
    if k_mode is not None and split != 1:
        raise ValueError("id 7 is a split (32-element types) or K_MODE (K-quants), not both")
    tail = (unroll, int(halves), split if k_mode is None else k_mode)
    while tail and tail[-1] == MV_SPEC_DEFAULTS[len(tail) - 1]:
        tail = tail[:-1]
    return (threads, rows, cols) + ((0, 0) + tail if tail else ())


def mv_halves(default: bool) -> bool:
    """Whether mv products widen their quants two at a time: $HALVES_ENV, else the type's default."""
    return flag(HALVES_ENV, default)


def mv_rows(rows: int, fused: str) -> tuple[int, int]:
    """(rows a mv workgroup reads, rows of Y it writes): the _norm_glu form reads an up row for each
    gate row, so it takes an even count and writes half; _norm_rope rotates pairs of rows, so it
    takes an even count."""
    if fused in ("_norm_glu", "_norm_rope"):
        rows = max(2, rows - rows % 2)
        return rows, rows // 2 if fused == "_norm_glu" else rows
    return rows, rows


FUSED_FORMS = ("_norm", "_norm_glu", "_norm_rope")


def fused_forms(mv: Callable[..., Dispatch]) -> Callable[[Caps, int, int, int, str], Dispatch]:
    """A type's mv_fused, from its mv(caps, n_out, n_in, max_cols, fused)."""
    def mv_fused(caps: Caps, n_out: int, n_in: int, cols: int, form: str) -> Dispatch:
        if form not in FUSED_FORMS:
            raise ValueError(f"form must be one of {FUSED_FORMS}, not {form!r}")
        return mv(caps, n_out, n_in, cols, form)
    return mv_fused


@dataclass(frozen=True)
class RopeOut:
    """Where a _norm_rope product puts a decode step's q, k or v: rotated (normal-mode RoPE over
    dims [0, n_rot) of each head_dim-wide head, cos and sin times mscale; n_rot 0 for the values)
    and stored as floats into Y, or (to_cache) into the token's KV cache slot as the cache's words
    (f16: pairs of halves, as ops.kv_store writes them)."""
    head_dim: int
    n_rot: int
    to_cache: bool
    f16: bool = True
    mscale: float = 1.0

    def spec(self) -> tuple[int, ...]:
        """Specialization constants 8 to 12 (shaders/mv_forms.glsl)."""
        if self.head_dim < 2 or self.head_dim % 2 or self.n_rot % 2 or not 0 <= self.n_rot <= self.head_dim:
            raise ValueError(f"RoPE in a product needs an even head_dim ({self.head_dim}) and an even n_rot "
                             f"({self.n_rot}) within it")
        mscale_bits = int(np.float32(self.mscale).view(np.uint32))
        return (self.head_dim, self.n_rot, int(self.to_cache), int(self.f16), mscale_bits)


def register(kernels: TypeKernels) -> None:
    REGISTRY[kernels.ggml_type] = kernels


def product(caps: Caps, ggml_type: int, n_out: int, n_in: int, max_cols: int) -> Dispatch:
    """The dispatch multiplying a weight of this type by up to max_cols columns."""
    k = REGISTRY[ggml_type]
    d = k.mm(caps, n_out, n_in, max_cols) if k.mm is not None and max_cols >= k.mm_min_cols else \
        k.mv(caps, n_out, n_in, max_cols)
    return replace(d, push=(n_out, n_in, 0, 0))  # columns from the tokens, Y overwritten


def mv_k_mode() -> int:
    """K_MODE of the K-quant mv products (k_mul_mv.comp's id 7): bit 0 each part's dot scaled once
    ($AFFINE_ENV, on unless "0"), bit 1 groups in sorted order ($KSORT_ENV, off unless "1"), bit 2
    partial sums added in one transposing pass ($KTRANSPOSE_ENV, on unless "0")."""
    return int(flag(AFFINE_ENV, True)) | 2 * int(flag(KSORT_ENV, False)) | 4 * int(flag(KTRANSPOSE_ENV, True))


def fused_product(caps: Caps, ggml_type: int, n_out: int, n_in: int, max_cols: int, eps: float,
                  glu: str | None = None, rope: RopeOut | None = None) -> Dispatch | None:
    """One dispatch for rms_norm(X) * gamma followed by the product (glu None), or by the stacked
    gate and up products and act(gate) * up (glu "silu" or "gelu"; n_out rows each), or (rope) by
    RoPE and the store of q, k or v, as decoding runs them; None where this type or this many
    columns take the unfused path (matrix-matrix products for prompts), or rows are not whole
    32-element blocks. With rope, binding 5 is the RoPE table and n_out is even."""
    k = REGISTRY[ggml_type]
    if k.mv_fused is None or (k.mm is not None and max_cols >= k.mm_min_cols) or n_in % 32:
        return None
    if glu not in (None, "silu", "gelu"):
        raise ValueError(f"glu must be None, 'silu' or 'gelu', not {glu!r}")
    if glu is not None and rope is not None:
        raise ValueError("a product takes glu or rope, not both")
    rope_spec = () if rope is None else rope.spec()
    if rope is not None and n_out % rope.head_dim:
        raise ValueError(f"RoPE in a product: n_out ({n_out}) must be whole heads of {rope.head_dim}")
    form = "_norm_glu" if glu is not None else "_norm_rope" if rope is not None else "_norm"
    d = k.mv_fused(caps, n_out, n_in, max_cols, form)
    eps_bits = int(np.float32(eps).view(np.uint32))
    tail = tuple(d.spec[5:8])
    if rope_spec:  # ids 5 to 7 spelt out before 8 on
        tail += MV_SPEC_DEFAULTS[len(tail):]
    return replace(d, spec=tuple(d.spec[:3]) + (int(glu == "gelu"), eps_bits) + tail + rope_spec,
                   push=(n_out, n_in, 0, 0))


# the types register themselves on import
from gpt4all_core.backend.vulkan import types_32, types_k  # noqa: E402,F401
