"""The GGML tensor types and GGUF metadata value types.

Block sizes and bytes per block follow ggml's type traits; every tensor's byte
size in a file is checked against this table.
"""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np

QK_K = 256  # elements in one K-quant super-block


class GGMLType(IntEnum):
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    IQ2_XXS = 16
    IQ2_XS = 17
    IQ3_XXS = 18
    IQ1_S = 19
    IQ4_NL = 20
    IQ3_S = 21
    IQ2_S = 22
    IQ4_XS = 23
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    IQ1_M = 29
    BF16 = 30
    TQ1_0 = 34
    TQ2_0 = 35
    MXFP4 = 39
    NVFP4 = 40
    Q1_0 = 41


class TypeTraits(NamedTuple):
    block_size: int  # elements per block
    type_size: int  # bytes per block


TYPE_TRAITS: dict[GGMLType, TypeTraits] = {
    GGMLType.F32: TypeTraits(1, 4),
    GGMLType.F16: TypeTraits(1, 2),
    GGMLType.BF16: TypeTraits(1, 2),
    GGMLType.F64: TypeTraits(1, 8),
    GGMLType.I8: TypeTraits(1, 1),
    GGMLType.I16: TypeTraits(1, 2),
    GGMLType.I32: TypeTraits(1, 4),
    GGMLType.I64: TypeTraits(1, 8),
    # fp16 scale d (+ fp16 min m) + 32 packed values (+ 32 high bits)
    GGMLType.Q4_0: TypeTraits(32, 2 + 16),
    GGMLType.Q4_1: TypeTraits(32, 2 + 2 + 16),
    GGMLType.Q5_0: TypeTraits(32, 2 + 4 + 16),
    GGMLType.Q5_1: TypeTraits(32, 2 + 2 + 4 + 16),
    GGMLType.Q8_0: TypeTraits(32, 2 + 32),
    GGMLType.Q8_1: TypeTraits(32, 4 + 4 + 32),
    GGMLType.IQ4_NL: TypeTraits(32, 2 + 16),
    GGMLType.MXFP4: TypeTraits(32, 1 + 16),
    GGMLType.NVFP4: TypeTraits(64, 4 + 32),
    GGMLType.Q1_0: TypeTraits(128, 2 + 16),
    # K-quants: 256-element super-blocks
    GGMLType.Q2_K: TypeTraits(QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
    GGMLType.Q3_K: TypeTraits(QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    GGMLType.Q4_K: TypeTraits(QK_K, 2 + 2 + QK_K // 2 + 12),
    GGMLType.Q5_K: TypeTraits(QK_K, 2 + 2 + QK_K // 2 + QK_K // 8 + 12),
    GGMLType.Q6_K: TypeTraits(QK_K, 2 + QK_K // 2 + QK_K // 4 + QK_K // 16),
    GGMLType.Q8_K: TypeTraits(QK_K, 4 + QK_K + QK_K // 8),
    GGMLType.IQ2_XXS: TypeTraits(QK_K, 2 + QK_K // 4),
    GGMLType.IQ2_XS: TypeTraits(QK_K, 2 + QK_K // 4 + QK_K // 32),
    GGMLType.IQ3_XXS: TypeTraits(QK_K, 2 + QK_K // 4 + QK_K // 8),
    GGMLType.IQ1_S: TypeTraits(QK_K, 2 + QK_K // 8 + QK_K // 16),
    GGMLType.IQ3_S: TypeTraits(QK_K, 2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
    GGMLType.IQ2_S: TypeTraits(QK_K, 2 + QK_K // 4 + QK_K // 16),
    GGMLType.IQ4_XS: TypeTraits(QK_K, 2 + 2 + QK_K // 2 + QK_K // 64),
    GGMLType.IQ1_M: TypeTraits(QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    GGMLType.TQ1_0: TypeTraits(QK_K, 2 + 4 * 13),
    GGMLType.TQ2_0: TypeTraits(QK_K, 2 + 64),
}

# Types whose elements are plain numbers: their tensors read as typed numpy
# arrays. BF16 has no numpy dtype, so it reads as raw uint16 bit patterns.
ELEMENT_DTYPES: dict[GGMLType, np.dtype] = {
    GGMLType.F32: np.dtype("<f4"),
    GGMLType.F16: np.dtype("<f2"),
    GGMLType.BF16: np.dtype("<u2"),
    GGMLType.F64: np.dtype("<f8"),
    GGMLType.I8: np.dtype("i1"),
    GGMLType.I16: np.dtype("<i2"),
    GGMLType.I32: np.dtype("<i4"),
    GGMLType.I64: np.dtype("<i8"),
}


def row_nbytes(ggml_type: GGMLType, n_per_row: int) -> int:
    """Bytes of one row of ``n_per_row`` elements; the row must be whole blocks."""
    block_size, type_size = TYPE_TRAITS[ggml_type]
    if n_per_row % block_size:
        raise ValueError(f"{ggml_type.name} rows need a multiple of {block_size} elements, got {n_per_row}")
    return n_per_row // block_size * type_size


def tensor_nbytes(ggml_type: GGMLType, ne: tuple[int, ...]) -> int:
    """Bytes of a tensor with GGML dimensions ``ne`` (``ne[0]`` is the row length)."""
    n_rows = 1
    for n in ne[1:]:
        n_rows *= n
    return row_nbytes(ggml_type, ne[0] if ne else 1) * n_rows


class GGUFValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


# Numeric value types and their little-endian numpy dtypes (arrays of these
# read as numpy arrays).
VALUE_DTYPES: dict[GGUFValueType, np.dtype] = {
    GGUFValueType.UINT8: np.dtype("u1"),
    GGUFValueType.INT8: np.dtype("i1"),
    GGUFValueType.UINT16: np.dtype("<u2"),
    GGUFValueType.INT16: np.dtype("<i2"),
    GGUFValueType.UINT32: np.dtype("<u4"),
    GGUFValueType.INT32: np.dtype("<i4"),
    GGUFValueType.FLOAT32: np.dtype("<f4"),
    GGUFValueType.BOOL: np.dtype("?"),
    GGUFValueType.UINT64: np.dtype("<u8"),
    GGUFValueType.INT64: np.dtype("<i8"),
    GGUFValueType.FLOAT64: np.dtype("<f8"),
}


class ArrayType(NamedTuple):
    """The type of an array value: its element type, and for an array of
    arrays the type of each inner array (they may differ)."""

    elem: GGUFValueType
    items: tuple | None = None  # per-element ValueType when elem is ARRAY

    def __repr__(self) -> str:
        if self.elem == GGUFValueType.ARRAY:
            return f"ARRAY[{', '.join(map(repr, self.items or ()))}]"
        return f"ARRAY[{self.elem.name}]"


ValueType = GGUFValueType | ArrayType
