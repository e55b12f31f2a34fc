"""Hand-written GGUF files for the hostile-file tests: a struct-level builder that remembers where
every field starts, the valid seed files that mutations start from, and an independent walker that
finds the fields of any valid file (so real files can be corrupted field by field too)."""
from __future__ import annotations

import functools
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from fixture_paths import MODEL_DIR, TEST_DATA, need

from gpt4all_core import gguf
from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf import GGMLType, GGUFWriter
from gpt4all_core.gguf import GGUFValueType as V

VOCAB_FILE = TEST_DATA / "llama.cpp-models" / "ggml-vocab-llama-spm.gguf"
SMOLLM2_FILE = MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf"

SCALAR_FORMATS = {
    V.UINT8: "B", V.INT8: "b", V.UINT16: "H", V.INT16: "h", V.UINT32: "I", V.INT32: "i", V.FLOAT32: "f",
    V.BOOL: "B", V.UINT64: "Q", V.INT64: "q", V.FLOAT64: "d",
}
SCALAR_SIZES = {t: struct.calcsize("<" + f) for t, f in SCALAR_FORMATS.items()}
NUMPY_DTYPES = {
    V.UINT8: "u1", V.INT8: "i1", V.UINT16: "<u2", V.INT16: "<i2", V.UINT32: "<u4", V.INT32: "<i4",
    V.FLOAT32: "<f4", V.BOOL: "?", V.UINT64: "<u8", V.INT64: "<i8", V.FLOAT64: "<f8",
}


# ---------------------------------------------------------------------------------------------------------------
# Writing GGUF by hand


class Builder:
    """Appends GGUF fields with struct and remembers where each labelled one starts."""

    def __init__(self, endian: str = "<"):
        self.endian = endian
        self.buf = bytearray()
        self.at: dict[str, int] = {}

    def put(self, fmt: str, value, label: str | None = None) -> None:
        if label is not None:
            self.at[label] = len(self.buf)
        self.buf += struct.pack(self.endian + fmt, value)

    def string(self, s: str | bytes, label: str | None = None) -> None:
        raw = s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")
        self.put("Q", len(raw), label)
        self.buf += raw

    def value(self, vtype: int, value, label: str) -> None:
        """A value without its type tag; an ARRAY value is (element type, items)."""
        self.at[label] = len(self.buf)
        if vtype == V.STRING:
            self.string(value)
        elif vtype == V.ARRAY:
            elem, items = value
            self.put("I", elem)
            self.put("Q", len(items), f"{label}:count")
            for i, item in enumerate(items):
                self.value(elem, item, f"{label}[{i}]")
        else:
            self.put(SCALAR_FORMATS[V(vtype)], value)


@dataclass
class Built:
    data: bytes
    at: dict[str, int]  # label -> offset of the field


def build(kvs, tensors=(), *, version: int = 3, alignment: int = 32, endian: str = "<") -> Built:
    """A GGUF file of ``kvs`` [(key, type, value)] and ``tensors`` [(name, ggml type, ne, raw bytes)].

    Labels: "version", "n_tensors", "n_kv"; for a key K: "K" (the entry), "K:type", "K:value" (for an
    array its element type), "K:value:count", "K:value[i]"...; for a tensor T: "tensor T" (the entry),
    "T:n_dims", "T:ne0".., "T:type", "T:offset"; "header_end", "data" and "data T".
    """
    b = Builder(endian)
    b.buf += b"GGUF"
    b.at["magic"] = 0
    b.put("I", version, "version")
    b.put("Q", len(tensors), "n_tensors")
    b.put("Q", len(kvs), "n_kv")
    for key, vtype, value in kvs:
        b.string(key, key)
        b.put("I", vtype, f"{key}:type")
        b.value(vtype, value, f"{key}:value")
    rel = 0
    placed = []
    for name, ggml_type, ne, raw in tensors:
        b.string(name, f"tensor {name}")
        b.put("I", len(ne), f"{name}:n_dims")
        b.at[f"{name}:ne"] = len(b.buf)
        for j, d in enumerate(ne):
            b.put("Q", d, f"{name}:ne{j}")
        b.put("I", ggml_type, f"{name}:type")
        b.put("Q", rel, f"{name}:offset")
        placed.append((name, raw))
        rel += -(-len(raw) // alignment) * alignment
    b.at["header_end"] = len(b.buf)
    if tensors:
        b.buf += bytes(-len(b.buf) % alignment)
        b.at["data"] = len(b.buf)
        for name, raw in placed:
            b.at[f"data {name}"] = len(b.buf)
            b.buf += raw + bytes(-len(raw) % alignment)
    return Built(bytes(b.buf), b.at)


def nested(depth: int):
    """An ARRAY value nested ``depth`` arrays deep (the innermost holds one UINT8)."""
    value = (V.UINT8, [7])
    for _ in range(depth - 1):
        value = (V.ARRAY, [value])
    return value


def _rng_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


RICH_KVS = [
    ("general.alignment", V.UINT32, 64),
    ("general.architecture", V.STRING, "llama"),
    ("test.u8", V.UINT8, 200),
    ("test.i8", V.INT8, -100),
    ("test.u16", V.UINT16, 60000),
    ("test.i16", V.INT16, -30000),
    ("test.u32", V.UINT32, 4_000_000_000),
    ("test.i32", V.INT32, -2_000_000_000),
    ("test.f32", V.FLOAT32, 1.5),
    ("test.bool", V.BOOL, 1),
    ("test.string", V.STRING, "héllo wörld ✓ 🦙 日本語"),
    ("test.u64", V.UINT64, 2**64 - 1),
    ("test.i64", V.INT64, -(2**63)),
    ("test.f64", V.FLOAT64, -2.25),
    ("test.empty_string", V.STRING, ""),
    ("test.not_utf8", V.STRING, b"\xff\xfe not utf-8 \xc3"),
    ("tëst.ünïcode.名前", V.UINT32, 7),
    *[(f"test.arr.{t.name.lower()}", V.ARRAY, (t, [0, 1, 2, 1])) for t in SCALAR_FORMATS if t != V.BOOL],
    ("test.arr.bool", V.ARRAY, (V.BOOL, [1, 0, 1, 1])),
    ("test.arr.string", V.ARRAY, (V.STRING, ["a", "", "ünïcödé", "🦙🦙", b"\x80"])),
    ("test.arr.empty", V.ARRAY, (V.INT32, [])),
    ("test.arr.nested", V.ARRAY, (V.ARRAY, [
        (V.UINT8, [1, 2]),
        (V.STRING, ["x", "yz"]),
        (V.ARRAY, [(V.FLOAT32, [0.5]), (V.ARRAY, []), (V.BOOL, [0])]),
        (V.INT64, []),
    ])),
    ("test.arr.deep", V.ARRAY, nested(8)),
    ("test.flag", V.BOOL, 0),
]
RICH_TENSORS = [
    ("token_embd.weight", GGMLType.F32, (3, 2), np.arange(6, dtype=np.float32).tobytes()),
    ("blk.0.attn_norm.weight", GGMLType.F16, (4,), np.array([1, -2, 0.5, 3], np.float16).tobytes()),
    ("blk.0.attn_q.weight", GGMLType.Q4_0, (64, 2), _rng_bytes(2 * 2 * 18, 1)),
    ("blk.0.ffn_up.weight", GGMLType.Q8_0, (32,), _rng_bytes(34, 2)),
    ("blk.0.ffn_down.weight", GGMLType.Q4_K, (256,), _rng_bytes(144, 3)),
    ("scalar", GGMLType.F32, (), struct.pack("<f", 2.5)),
    ("empty", GGMLType.F32, (0, 4), b""),
    ("output.weight", GGMLType.I8, (5, 1, 1, 1), bytes([1, 2, 3, 4, 5])),
]
TINY_KVS = [("general.architecture", V.STRING, "tiny"), ("tiny.flag", V.BOOL, 1)]
TINY_TENSORS = [
    ("a", GGMLType.F32, (4,), np.arange(4, dtype=np.float32).tobytes()),
    ("b", GGMLType.Q8_0, (32,), _rng_bytes(34, 4)),
]


def rich() -> Built:
    return build(RICH_KVS, RICH_TENSORS, alignment=64)


def tiny() -> Built:
    return build(TINY_KVS, TINY_TENSORS)


def writer_file() -> bytes:
    """A file from our own GGUFWriter, alignment 16."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "w.gguf")
        w = GGUFWriter(path, alignment=16)
        w.add("general.architecture", "llama")
        w.add("general.name", "wrïter ✓")
        w.add("llama.block_count", 1)
        w.add("llama.rope.freq_base", 10000.0)
        w.add("llama.attention.causal", True)
        w.add("tokenizer.ggml.tokens", ["<s>", "</s>", "ä", "🦙"])
        w.add("tokenizer.ggml.scores", np.array([0.0, -1.0, -2.5, 3.0], np.float32))
        w.add("tokenizer.ggml.token_type", np.array([3, 3, 1, 1], np.int32))
        w.add("test.u64", 2**64 - 1, V.UINT64)
        w.add("test.f64", 0.125, V.FLOAT64)
        w.add("test.nested", [[1, 2], [3.5], ["ä", "🦙"]])
        w.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(4, 3))
        w.add_tensor("blk.0.attn_norm.weight", np.ones(8, np.float16))
        w.add_tensor("blk.0.attn_q.weight", _rng_bytes(18 * 2, 5), ggml_type=GGMLType.Q4_0, shape=(2, 32))
        w.add_tensor("blk.0.attn_k.weight", _rng_bytes(34, 6), ggml_type=GGMLType.Q8_0, shape=(1, 32))
        w.add_tensor("blk.0.ffn_down.weight", _rng_bytes(144, 7), ggml_type=GGMLType.Q4_K, shape=(1, 256))
        w.add_tensor("blk.0.ffn_gate.weight", np.arange(6, dtype=np.float32).reshape(2, 3), ggml_type=GGMLType.BF16)
        w.add_tensor("output.weight", np.arange(5, dtype=np.int8))
        w.write()
        with open(path, "rb") as f:
            return f.read()


@functools.cache
def seed(name: str) -> bytes:
    """The valid files that the mutation tests start from."""
    if name == "tiny":
        return tiny().data
    if name == "rich":
        return rich().data
    if name == "v2":
        return build(RICH_KVS[1:12], RICH_TENSORS[:3], version=2).data
    if name == "writer":
        return writer_file()
    if name == "vocab":
        return need(VOCAB_FILE).read_bytes()
    if name == "smollm2-kv":
        return smollm2_metadata_only()
    raise KeyError(name)


@functools.cache
def smollm2_header() -> bytes:
    """SmolLM2's header: metadata and tensor infos, up to where the tensor data would begin."""
    with gguf.open(need(SMOLLM2_FILE)) as f:
        data_offset = f.data_offset
    with open(SMOLLM2_FILE, "rb") as f:
        return f.read(data_offset)


def smollm2_metadata_only() -> bytes:
    """SmolLM2's real metadata (tokenizer and all) as a file of its own: tensor count 0, cut after the keys."""
    header = smollm2_header()
    layout = walk(header)
    data = bytearray(header[: layout.kv_end])
    data[8:16] = struct.pack("<Q", 0)
    return bytes(data)


# ---------------------------------------------------------------------------------------------------------------
# Walking a valid file independently of the reader: where every field starts


@dataclass
class Layout:
    starts: set[int] = field(default_factory=set)  # the start of every field, numbers and strings and blobs
    ints: list[tuple[int, int, str]] = field(default_factory=list)  # (offset, width, kind) of every number field
    tensors: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {"info", "ne", "type", "offset"}
    keys: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> {"entry", "type", "value"}
    kv_end: int = 0
    header_end: int = 0


@functools.cache
def walk_seed(name: str) -> Layout:
    return walk(seed(name))


def walk(data: bytes) -> Layout:
    out = Layout()
    pos = 0

    def num(width: int, kind: str) -> int:
        nonlocal pos
        out.starts.add(pos)
        out.ints.append((pos, width, kind))
        pos += width
        return int.from_bytes(data[pos - width: pos], "little")

    def string(kind: str) -> bytes:
        nonlocal pos
        n = num(8, kind)
        out.starts.add(pos)
        pos += n
        return data[pos - n: pos]

    def value(t: int, kind: str) -> None:
        nonlocal pos
        if t == V.STRING:
            string(kind)
        elif t == V.ARRAY:
            elem = num(4, "type")
            n = num(8, "count")
            if elem in (V.STRING, V.ARRAY):
                for _ in range(n):
                    value(elem, "item length")
            else:
                out.starts.add(pos)
                pos += n * SCALAR_SIZES[V(elem)]
        else:
            num(SCALAR_SIZES[V(t)], "scalar")

    out.starts.add(0)
    pos = 4
    num(4, "version")
    n_tensors = num(8, "count")
    n_kv = num(8, "count")
    for _ in range(n_kv):
        entry = pos
        key = string("length").decode("utf-8", "surrogateescape")
        type_at = pos
        t = num(4, "type")
        out.keys[key] = {"entry": entry, "type": type_at, "value": pos}
        value(t, "value")
    out.kv_end = pos
    for _ in range(n_tensors):
        info = pos
        name = string("length").decode("utf-8", "surrogateescape")
        n_dims = num(4, "n_dims")
        ne = pos
        for _ in range(n_dims):
            num(8, "dim")
        type_at = pos
        num(4, "type")
        offset_at = pos
        num(8, "offset")
        out.tensors[name] = {"info": info, "ne": ne, "type": type_at, "offset": offset_at}
    out.header_end = pos
    out.starts.add(pos)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Checking


def write(path: Path, data: bytes) -> Path:
    """Write to a fresh inode, so that a mapping of an earlier version is never truncated under it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def expect_error(tmp_path: Path, data: bytes, offset: int, *names: str, message: str = "") -> GGUFError:
    """gguf.open(data) raises GGUFError at ``offset``, with ``names`` in its field and ``message`` in its text."""
    path = write(tmp_path / "bad.gguf", data)
    with pytest.raises(GGUFError) as info:
        gguf.open(path)
    err = info.value
    assert err.offset == offset, str(err)
    assert err.field, str(err)
    for name in names:
        assert name in err.field or name in str(err), (name, str(err))
    assert message in str(err)
    assert f"offset {offset}" in str(err) and str(path) in str(err)
    return err


def patched(data: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


