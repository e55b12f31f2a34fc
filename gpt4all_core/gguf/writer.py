"""Write GGUF files that llama.cpp and our reader load.

    with GGUFWriter("tiny.gguf") as w:
        w.add("general.architecture", "llama")
        w.add("llama.block_count", 2)            # UINT32, as llama.cpp expects
        w.add_tensor("token_embd.weight", np.zeros((32, 64), np.float32))
        w.add_tensor("blk.0.attn_q.weight", q4_0_bytes, ggml_type=GGMLType.Q4_0, shape=(64, 64))

Value types come from the caller, else from a table of the keys llama.cpp
reads with a fixed type, else from the Python value. The file is written to a
temporary name and renamed at the end, so a failed write leaves nothing half
done behind.
"""
from __future__ import annotations

import os
import struct
from typing import Any

import numpy as np

from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf.reader import ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUFFile
from gpt4all_core.gguf.types import (
    ELEMENT_DTYPES,
    TYPE_TRAITS,
    VALUE_DTYPES,
    ArrayType,
    GGMLType,
    GGUFValueType,
    ValueType,
)

GGUF_MAGIC = b"GGUF"
MAX_TENSOR_NAME = 63  # ggml's GGML_MAX_NAME is 64 with the terminating zero

V = GGUFValueType
# Keys that llama.cpp reads with one fixed type; "{arch}." keys go by the part after the architecture.
KNOWN_KEY_TYPES: dict[str, ValueType] = {
    "general.alignment": V.UINT32,
    "general.file_type": V.UINT32,
    "general.quantization_version": V.UINT32,
    **{f"tokenizer.ggml.{t}_token_id": V.UINT32 for t in (
        "bos", "eos", "eot", "eom", "unknown", "seperator", "separator", "padding", "cls", "mask",
        "prefix", "suffix", "middle", "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep")},
    **{f"tokenizer.ggml.{b}": V.BOOL for b in ("add_bos_token", "add_eos_token", "add_sep_token", "add_space_prefix",
                                               "remove_extra_whitespaces", "normalizer.lowercase",
                                               "normalizer.strip_accents")},
    "tokenizer.ggml.token_type_count": V.UINT32,
    "tokenizer.ggml.tokens": ArrayType(V.STRING),
    "tokenizer.ggml.merges": ArrayType(V.STRING),
    "tokenizer.ggml.scores": ArrayType(V.FLOAT32),
    "tokenizer.ggml.token_type": ArrayType(V.INT32),
}
ARCH_KEY_TYPES: dict[str, ValueType] = {
    **{k: V.UINT32 for k in (
        "context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
        "attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length",
        "attention.sliding_window", "rope.dimension_count", "rope.scaling.original_context_length",
        "expert_count", "expert_used_count", "pooling_type")},
    **{k: V.FLOAT32 for k in (
        "attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon", "rope.freq_base",
        "rope.scaling.factor", "final_logit_softcapping", "attn_logit_softcapping")},
    "attention.causal": V.BOOL,
}

_SCALAR_FORMATS = {
    V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
    V.UINT64: "<Q", V.INT64: "<q", V.FLOAT32: "<f", V.FLOAT64: "<d", V.BOOL: "<?",
}
_DTYPE_VALUE_TYPES = {dtype: vt for vt, dtype in VALUE_DTYPES.items()}
_TENSOR_TYPES_BY_DTYPE = {
    np.dtype(np.float32): GGMLType.F32, np.dtype(np.float16): GGMLType.F16, np.dtype(np.float64): GGMLType.F64,
    np.dtype(np.int8): GGMLType.I8, np.dtype(np.int16): GGMLType.I16, np.dtype(np.int32): GGMLType.I32,
    np.dtype(np.int64): GGMLType.I64,
}


def float32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 bit patterns (nearest even; NaN stays NaN), as ggml does."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
    quiet_nan = (bits >> 16) | 64
    return np.where(np.isnan(x), quiet_nan, rounded).astype(np.uint16)


def infer_value_type(key: str, value: Any) -> ValueType:
    """The GGUF type to store ``value`` under ``key`` when the caller gives none."""
    if key in KNOWN_KEY_TYPES:
        return KNOWN_KEY_TYPES[key]
    _, _, suffix = key.partition(".")
    if not key.startswith(("general.", "tokenizer.")) and suffix in ARCH_KEY_TYPES:
        return ARCH_KEY_TYPES[suffix]
    if isinstance(value, np.ndarray):
        if value.dtype not in _DTYPE_VALUE_TYPES:
            raise GGUFError(f"no GGUF array type for numpy dtype {value.dtype}", field=key)
        return ArrayType(_DTYPE_VALUE_TYPES[value.dtype])
    if isinstance(value, np.generic) and value.dtype in _DTYPE_VALUE_TYPES:
        return _DTYPE_VALUE_TYPES[value.dtype]
    if isinstance(value, bool):
        return V.BOOL
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return V.INT32
        return V.INT64 if -(2**63) <= value < 2**63 else V.UINT64
    if isinstance(value, float):
        return V.FLOAT32
    if isinstance(value, (str, bytes)):
        return V.STRING
    if isinstance(value, (list, tuple)):
        if not value:
            raise GGUFError("cannot infer the element type of an empty array; pass value_type", field=key)
        if all(isinstance(v, (list, tuple, np.ndarray)) for v in value):
            return ArrayType(V.ARRAY, tuple(infer_value_type(key + "[]", v) for v in value))
        kinds = {infer_value_type(key + "[]", v) for v in value}
        if kinds <= {V.INT32, V.INT64} and len(kinds) == 2:
            kinds = {V.INT64}
        if kinds <= {V.INT32, V.INT64, V.FLOAT32} and V.FLOAT32 in kinds:
            kinds = {V.FLOAT32}
        if len(kinds) != 1 or isinstance(next(iter(kinds)), ArrayType):
            raise GGUFError(f"array mixes element types {sorted(map(repr, kinds))}; pass value_type", field=key)
        return ArrayType(kinds.pop())
    raise GGUFError(f"cannot store a {type(value).__name__} in GGUF", field=key)


def _encode_string(s: str | bytes) -> bytes:
    raw = s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")
    return struct.pack("<Q", len(raw)) + raw


def encode_value(key: str, value: Any, vtype: ValueType) -> bytes:
    """The bytes of ``value`` stored as ``vtype`` (without the type tag)."""
    if isinstance(vtype, ArrayType):
        elem = vtype.elem
        head = struct.pack("<IQ", elem, len(value))
        if elem == V.STRING:
            return head + b"".join(_encode_string(s) for s in value)
        if elem == V.ARRAY:
            items = vtype.items or ()
            if len(items) != len(value):
                raise GGUFError(f"{len(value)} inner arrays but {len(items)} inner types", field=key)
            # an inner array is its element type, count and items: no ARRAY tag of its own
            return head + b"".join(encode_value(key, v, t) for v, t in zip(value, items))
        return head + _numeric_array(key, value, VALUE_DTYPES[elem]).tobytes()
    if vtype == V.STRING:
        if not isinstance(value, (str, bytes)):
            raise GGUFError(f"STRING value expected, got {type(value).__name__}", field=key)
        return _encode_string(value)
    if vtype == V.BOOL and not isinstance(value, (bool, np.bool_)):
        raise GGUFError(f"BOOL value expected, got {value!r}", field=key)
    try:
        return struct.pack(_SCALAR_FORMATS[vtype], value)
    except (struct.error, KeyError, TypeError) as e:
        raise GGUFError(f"{value!r} does not fit {vtype!r}: {e}", field=key) from None


def _numeric_array(key: str, value: Any, dtype: np.dtype) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise GGUFError(f"array must be one-dimensional, got shape {arr.shape}", field=key)
    if dtype.kind in "iu" and arr.size:
        if arr.dtype.kind not in "iub":
            raise GGUFError(f"integer array expected, got {arr.dtype}", field=key)
        info = np.iinfo(dtype)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise GGUFError(f"values outside {dtype} range [{info.min}, {info.max}]", field=key)
    return arr.astype(dtype, copy=False)


class GGUFWriter:
    """Collects metadata and tensors, then writes one GGUF file in ``write()``."""

    def __init__(self, path: str | os.PathLike, *, alignment: int = DEFAULT_ALIGNMENT, version: int = 3):
        if version not in (2, 3):
            raise GGUFError(f"can write GGUF version 2 or 3, not {version}", path=path)
        if alignment <= 0 or alignment & (alignment - 1):
            raise GGUFError(f"alignment must be a power of two, got {alignment}", path=path, field=ALIGNMENT_KEY)
        self.path = os.fspath(path)
        self.version = version
        self.alignment = alignment
        self._kv: dict[str, tuple[Any, ValueType]] = {}
        self._tensors: dict[str, tuple[GGMLType, tuple[int, ...], np.ndarray]] = {}
        if alignment != DEFAULT_ALIGNMENT:
            self.add(ALIGNMENT_KEY, alignment)

    def add(self, key: str, value: Any, value_type: ValueType | None = None) -> None:
        """Set one metadata key; ``value_type`` defaults as the module doc says."""
        if key in self._kv:
            raise GGUFError(f"metadata key {key!r} added twice", path=self.path, field=key)
        vtype = infer_value_type(key, value) if value_type is None else value_type
        encode_value(key, value, vtype)  # fail now, naming the key, rather than at write()
        if key == ALIGNMENT_KEY:
            if vtype != V.UINT32 or value <= 0 or value & (value - 1):
                raise GGUFError("alignment must be a power of two stored as UINT32", path=self.path, field=key)
            self.alignment = int(value)
        self._kv[key] = (value, vtype)

    def add_metadata_from(self, source: GGUFFile, skip: tuple[str, ...] = ()) -> None:
        """Copy every key of ``source`` with its exact type (except ``skip``)."""
        for key, value in source.metadata.items():
            if key not in skip and key not in self._kv:
                self.add(key, value, source.types[key])

    def add_tensor(self, name: str, data: Any, ggml_type: GGMLType | None = None,
                   shape: tuple[int, ...] | None = None) -> None:
        """Add a tensor. ``shape`` is numpy order in elements (last = row length).

        Plain types take a numeric array (floats are converted to F16/F32/F64,
        float32 to BF16 by rounding); block-quantized types take the raw bytes
        of the blocks plus ``shape``, or uint8 rows of whole blocks.
        """
        def fail(message: str) -> GGUFError:
            return GGUFError(message, path=self.path, field=f"tensor {name!r}")

        if name in self._tensors:
            raise fail("added twice")
        if len(name.encode("utf-8")) > MAX_TENSOR_NAME:
            raise fail(f"name longer than {MAX_TENSOR_NAME} bytes")
        arr = np.asarray(data) if not isinstance(data, (bytes, bytearray, memoryview)) else np.frombuffer(data, np.uint8)
        if ggml_type is None:
            if arr.dtype not in _TENSOR_TYPES_BY_DTYPE:
                raise fail(f"cannot infer a ggml type from dtype {arr.dtype}; pass ggml_type")
            ggml_type = _TENSOR_TYPES_BY_DTYPE[arr.dtype]
        ggml_type = GGMLType(ggml_type)
        block_size, type_size = TYPE_TRAITS[ggml_type]
        if ggml_type in ELEMENT_DTYPES:
            arr = self._element_array(arr, ggml_type, fail)
            shape = arr.shape if shape is None else tuple(shape)
            if int(np.prod(shape)) != arr.size:
                raise fail(f"shape {shape} does not hold {arr.size} elements")
        else:
            if arr.dtype != np.uint8:
                raise fail(f"{ggml_type.name} data must be raw uint8 blocks, got {arr.dtype}")
            if shape is None:
                if arr.ndim < 1 or arr.shape[-1] % type_size:
                    raise fail(f"pass shape, or uint8 rows of whole {type_size}-byte blocks")
                shape = arr.shape[:-1] + (arr.shape[-1] // type_size * block_size,)
            shape = tuple(int(s) for s in shape)
        if not shape or any(s < 0 for s in shape):
            raise fail(f"invalid shape {shape}")
        if shape[-1] % block_size:
            raise fail(f"row length {shape[-1]} is not a multiple of the {ggml_type.name} block size {block_size}")
        nbytes = int(np.prod(shape, dtype=object)) // block_size * type_size
        if arr.nbytes != nbytes:
            raise fail(f"{arr.nbytes} bytes of data, but {ggml_type.name} {shape} takes {nbytes}")
        self._tensors[name] = (ggml_type, tuple(reversed(shape)), arr)

    @staticmethod
    def _element_array(arr: np.ndarray, ggml_type: GGMLType, fail) -> np.ndarray:
        want = ELEMENT_DTYPES[ggml_type]
        if ggml_type == GGMLType.BF16 and arr.dtype == np.float32:
            return float32_to_bf16_bits(arr)
        if arr.dtype == want:
            return arr
        if want.kind == "f" and arr.dtype.kind == "f":
            return arr.astype(want)
        raise fail(f"{ggml_type.name} data must be {want}, got {arr.dtype}")

    def _header(self) -> bytes:
        parts = [GGUF_MAGIC, struct.pack("<IQQ", self.version, len(self._tensors), len(self._kv))]
        for key, (value, vtype) in self._kv.items():
            tag = V.ARRAY if isinstance(vtype, ArrayType) else vtype
            parts += [_encode_string(key), struct.pack("<I", tag), encode_value(key, value, vtype)]
        offset = 0
        for name, (ggml_type, ne, arr) in self._tensors.items():
            parts += [_encode_string(name), struct.pack("<I", len(ne)), struct.pack(f"<{len(ne)}Q", *ne),
                      struct.pack("<IQ", ggml_type, offset)]
            offset += self._padded(arr.nbytes)
        return b"".join(parts)

    def _padded(self, n: int) -> int:
        return -(-n // self.alignment) * self.alignment

    def write(self) -> None:
        """Write the file (to a temporary name, renamed into place when complete)."""
        header = self._header()
        tmp = f"{self.path}.tmp{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                f.write(header)
                if self._tensors:  # like llama.cpp, a file without tensors ends with its header
                    f.write(b"\0" * (self._padded(len(header)) - len(header)))
                for _, _, arr in self._tensors.values():
                    f.write(memoryview(np.ascontiguousarray(arr)).cast("B"))
                    f.write(b"\0" * (self._padded(arr.nbytes) - arr.nbytes))
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def __enter__(self) -> "GGUFWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.write()
