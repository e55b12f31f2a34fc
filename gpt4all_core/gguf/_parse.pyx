# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Parse a GGUF header: version, metadata and tensor infos.

The file arrives as one read-only buffer (an mmap). Every read is checked
against the bytes left before it happens, and every count the file states is
checked against those bytes before anything is allocated from it, so a hostile
file costs at most a small multiple of its own size and never reads past its
end. Tensor data is not touched here.
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

import numpy as np

from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf.types import VALUE_DTYPES, ArrayType, GGUFValueType

cdef enum:
    T_UINT8 = 0
    T_INT8 = 1
    T_UINT16 = 2
    T_INT16 = 3
    T_UINT32 = 4
    T_INT32 = 5
    T_FLOAT32 = 6
    T_BOOL = 7
    T_STRING = 8
    T_ARRAY = 9
    T_UINT64 = 10
    T_INT64 = 11
    T_FLOAT64 = 12
    T_COUNT = 13

# ggml tensors have at most 4 dimensions; arrays nest at most this deep.
cdef uint32_t MAX_DIMS = 4
cdef int MAX_NESTING = 8
# Smallest possible encodings, used to bound counts before allocating.
cdef Py_ssize_t MIN_KV_BYTES = 8 + 4 + 1
cdef Py_ssize_t MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8
cdef uint64_t INT64_MAX_U = 0x7FFFFFFFFFFFFFFF

# Bytes one element of each value type takes at least (strings: their length, arrays: type and count).
cdef Py_ssize_t[13] MIN_VALUE_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8]

_VALUE_TYPES = [GGUFValueType(t) for t in range(T_COUNT)]
_DTYPES = [VALUE_DTYPES.get(GGUFValueType(t)) for t in range(T_COUNT)]


cdef class HeaderParser:
    cdef object mv  # the memoryview read, kept for np.frombuffer
    cdef const uint8_t* base
    cdef Py_ssize_t size
    cdef Py_ssize_t pos
    cdef object path
    cdef str where  # the field being read, for error messages

    def __cinit__(self, buf, path=None):
        cdef const uint8_t[::1] view = buf
        self.mv = memoryview(buf)
        self.size = view.shape[0]
        self.base = &view[0] if self.size > 0 else NULL
        self.pos = 0
        self.path = path
        self.where = "header"

    def release(self):
        """Drop the buffer so that the caller can close its mmap."""
        self.mv = None
        self.base = NULL
        self.size = 0

    cdef int fail(self, str message, Py_ssize_t offset) except -1:
        raise GGUFError(message, path=self.path, offset=offset, field=self.where)

    cdef inline int need(self, Py_ssize_t n) except -1:
        if n > self.size - self.pos:
            self.fail(f"file truncated: {n} bytes needed, {self.size - self.pos} left", self.pos)
        return 0

    cdef inline uint8_t u8(self) except? 255:
        self.need(1)
        self.pos += 1
        return self.base[self.pos - 1]

    cdef inline uint16_t u16(self) except? 65535:
        cdef uint16_t v
        self.need(2)
        memcpy(&v, self.base + self.pos, 2)
        self.pos += 2
        return v

    cdef inline uint32_t u32(self) except? 0xFFFFFFFF:
        cdef uint32_t v
        self.need(4)
        memcpy(&v, self.base + self.pos, 4)
        self.pos += 4
        return v

    cdef inline uint64_t u64(self) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t v
        self.need(8)
        memcpy(&v, self.base + self.pos, 8)
        self.pos += 8
        return v

    cdef Py_ssize_t count(self, Py_ssize_t min_each, str what) except -1:
        """Read a u64 count and check that that many items can fit in the rest of the file."""
        cdef Py_ssize_t start = self.pos
        cdef uint64_t n = self.u64()
        if min_each > 0 and n > <uint64_t>((self.size - self.pos) // min_each):
            self.fail(f"{what} count {n} cannot fit in the {self.size - self.pos} bytes left", start)
        return <Py_ssize_t>n

    cdef str string(self):
        cdef Py_ssize_t start = self.pos
        cdef Py_ssize_t n = self.count(1, "string length")
        # surrogateescape keeps invalid UTF-8 (some vocabularies have it) lossless for the writer
        s = PyUnicode_DecodeUTF8(<const char*>(self.base + self.pos), n, "surrogateescape")
        self.pos += n
        return s

    cdef uint32_t value_type(self) except? 0xFFFFFFFF:
        cdef Py_ssize_t start = self.pos
        cdef uint32_t t = self.u32()
        if t >= T_COUNT:
            self.fail(f"unknown metadata value type {t}", start)
        return t

    cdef object scalar(self, uint32_t t):
        cdef uint8_t b
        cdef float f
        cdef double d
        cdef Py_ssize_t start = self.pos
        if t == T_UINT8:
            return self.u8()
        if t == T_INT8:
            return <int8_t>self.u8()
        if t == T_UINT16:
            return self.u16()
        if t == T_INT16:
            return <int16_t>self.u16()
        if t == T_UINT32:
            return self.u32()
        if t == T_INT32:
            return <int32_t>self.u32()
        if t == T_UINT64:
            return self.u64()
        if t == T_INT64:
            return <int64_t>self.u64()
        if t == T_FLOAT32:
            self.need(4)
            memcpy(&f, self.base + self.pos, 4)
            self.pos += 4
            return f
        if t == T_FLOAT64:
            self.need(8)
            memcpy(&d, self.base + self.pos, 8)
            self.pos += 8
            return d
        if t == T_BOOL:
            b = self.u8()
            if b > 1:
                self.fail(f"bool value {b} is neither 0 nor 1", start)
            return b == 1
        if t == T_STRING:
            return self.string()
        self.fail(f"value type {t} is not a scalar", start)

    cdef tuple value(self, uint32_t t, int depth):
        """Read one value of type t: (python value, its ValueType)."""
        if t != T_ARRAY:
            return self.scalar(t), _VALUE_TYPES[t]
        cdef Py_ssize_t start = self.pos
        if depth >= MAX_NESTING:
            self.fail(f"arrays nested deeper than {MAX_NESTING}", start)
        cdef uint32_t elem = self.value_type()
        cdef Py_ssize_t n = self.count(MIN_VALUE_BYTES[elem], f"array of {_VALUE_TYPES[elem].name}")
        cdef Py_ssize_t i, nbytes
        if elem == T_STRING:
            return [self.string() for i in range(n)], ArrayType(_VALUE_TYPES[elem])
        if elem == T_ARRAY:
            values = []
            item_types = []
            for i in range(n):
                v, vt = self.value(T_ARRAY, depth + 1)
                values.append(v)
                item_types.append(vt)
            return values, ArrayType(_VALUE_TYPES[elem], tuple(item_types))
        dtype = _DTYPES[elem]
        nbytes = n * dtype.itemsize
        self.need(nbytes)
        # a copy: metadata must not pin the mmap open
        arr = np.frombuffer(self.mv, dtype=dtype, count=n, offset=self.pos).copy()
        if elem == T_BOOL and n and arr.view(np.uint8).max() > 1:
            bad = int(np.argmax(arr.view(np.uint8) > 1))
            self.fail(f"bool array item {bad} is neither 0 nor 1", self.pos + bad)
        self.pos += nbytes
        return arr, ArrayType(_VALUE_TYPES[elem])

    cdef uint32_t version(self) except? 0xFFFFFFFF:
        self.where = "magic"
        self.need(4)
        magic = bytes(self.mv[0:4])
        if magic in (b"lmgg", b"fmgg", b"tjgg"):
            self.fail("legacy GGML/GGMF/GGJT file; convert it to GGUF first", 0)
        if magic != b"GGUF":
            self.fail(f"not a GGUF file (magic {magic!r}, expected b'GGUF')", 0)
        self.pos = 4
        self.where = "version"
        cdef uint32_t v = self.u32()
        cdef uint32_t swapped = ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24)
        if v == 1:
            self.fail("GGUF version 1 is not supported (only 2 and 3); re-convert the model", 4)
        if v not in (2, 3):
            if swapped in (1, 2, 3):
                self.fail(f"big-endian GGUF (version {swapped}) is not supported", 4)
            self.fail(f"unsupported GGUF version {v} (only 2 and 3)", 4)
        return v

    def parse(self):
        """Return (version, metadata, types, key_offsets, tensor_infos, end).

        tensor_infos holds (name, ne, type id, relative data offset, offset of ne[0]).
        """
        cdef uint32_t version = self.version()
        cdef Py_ssize_t i, n_tensors, n_kv, start, j, dims_start
        cdef uint32_t t, n_dims
        cdef uint64_t dim
        self.where = "tensor count"
        n_tensors = self.count(MIN_TENSOR_INFO_BYTES, "tensor")
        self.where = "metadata count"
        n_kv = self.count(MIN_KV_BYTES, "metadata key/value")
        if n_tensors > (self.size - self.pos - n_kv * MIN_KV_BYTES) // MIN_TENSOR_INFO_BYTES:
            self.where = "tensor count"
            self.fail(f"{n_kv} metadata entries and {n_tensors} tensors cannot fit in the file", 8)

        metadata = {}
        types = {}
        key_offsets = {}
        for i in range(n_kv):
            start = self.pos
            self.where = f"metadata key {i}"
            key = self.string()
            if key in metadata:
                self.fail(f"duplicate metadata key {key!r}", start)
            self.where = f"metadata key {key!r}"
            t = self.value_type()
            value, vtype = self.value(t, 0)
            metadata[key] = value
            types[key] = vtype
            key_offsets[key] = start

        tensor_infos = []
        names = set()
        for i in range(n_tensors):
            start = self.pos
            self.where = f"tensor info {i}"
            name = self.string()
            if name in names:
                self.fail(f"duplicate tensor name {name!r}", start)
            names.add(name)
            self.where = f"tensor {name!r}"
            n_dims = self.u32()
            if n_dims > MAX_DIMS:
                self.fail(f"{n_dims} dimensions (ggml allows at most {MAX_DIMS})", self.pos - 4)
            ne = []
            dims_start = self.pos
            for j in range(n_dims):
                dim = self.u64()
                if dim > INT64_MAX_U:
                    self.fail(f"dimension {j} is {dim}, beyond int64", self.pos - 8)
                ne.append(dim)
            t = self.u32()
            offset = self.u64()
            tensor_infos.append((name, tuple(ne), t, offset, dims_start))
        self.where = "end of header"
        return version, metadata, types, key_offsets, tensor_infos, self.pos
