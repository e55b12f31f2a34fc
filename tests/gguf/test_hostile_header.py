"""Hostile GGUF headers: valid baselines, truncation, magic and version, metadata. Each broken file
raises GGUFError naming the offset and the field at fault (files built by tests/support/gguf_craft.py)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from gguf_craft import (
    NUMPY_DTYPES,
    RICH_KVS,
    RICH_TENSORS,
    SMOLLM2_FILE,
    TINY_KVS,
    TINY_TENSORS,
    build,
    expect_error,
    nested,
    patched,
    rich,
    seed,
    smollm2_header,
    tiny,
    walk,
    walk_seed,
    write,
)
from gguf_property import open_or_error

from gpt4all_core import gguf
from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf import GGUFValueType as V

# ---------------------------------------------------------------------------------------------------------------
# The valid files are valid (else every corruption below would prove nothing)


def _expected_value(vtype, value):
    if vtype == V.ARRAY:
        elem, items = value
        if elem == V.ARRAY:
            return [_expected_value(V.ARRAY, item) for item in items]
        if elem == V.STRING:
            return [_expected_value(V.STRING, s) for s in items]
        return np.array(items, dtype=NUMPY_DTYPES[elem])
    if vtype == V.STRING:
        return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    if vtype == V.BOOL:
        return bool(value)
    return value


def _expected_type(vtype, value):
    if vtype != V.ARRAY:
        return V(vtype)
    elem, items = value
    if elem == V.ARRAY:
        return gguf.ArrayType(V.ARRAY, tuple(_expected_type(V.ARRAY, item) for item in items))
    return gguf.ArrayType(V(elem))


def _assert_same(got, want, key):
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype and np.array_equal(got, want), key
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), key
        for g, w in zip(got, want):
            _assert_same(g, w, key)
    else:
        assert type(got) is type(want) and got == want, (key, got, want)


@pytest.mark.parametrize("make", [rich, tiny, lambda: build(RICH_KVS[1:12], RICH_TENSORS[:3], version=2)],
                         ids=["rich", "tiny", "v2"])
def test_hand_written_files_parse_exactly(tmp_path, make):
    built = make()
    path = write(tmp_path / "ok.gguf", built.data)
    assert open_or_error(path, built.data) is None
    kvs, tensors = (TINY_KVS, TINY_TENSORS) if make is tiny else (RICH_KVS, RICH_TENSORS)
    with gguf.open(path) as f:
        assert f.header_size == built.at["header_end"]
        keys = [k for k, _, _ in kvs if k in f.metadata]
        assert list(f.metadata) == keys and len(keys) == struct.unpack_from("<Q", built.data, 16)[0]
        for key, vtype, value in kvs:
            if key in f.metadata:
                _assert_same(f.metadata[key], _expected_value(vtype, value), key)
        assert f.types == {k: _expected_type(t, v) for k, t, v in kvs if k in f.metadata}
        for name, ggml_type, ne, raw in tensors:
            if name not in f.tensors:
                continue
            t = f.tensors[name]
            assert (t.type, t.ne, t.nbytes, t.offset) == (ggml_type, ne, len(raw), built.at[f"data {name}"])
            assert t.data.tobytes() == raw
        assert len(f.tensors) == struct.unpack_from("<Q", built.data, 8)[0]


def test_walker_agrees_with_the_builder():
    built = rich()
    layout = walk(built.data)
    assert layout.header_end == built.at["header_end"]
    for key, spots in layout.keys.items():
        assert (spots["entry"], spots["type"], spots["value"]) == (
            built.at[key], built.at[f"{key}:type"], built.at[f"{key}:value"])
    for name, spots in layout.tensors.items():
        assert (spots["info"], spots["ne"], spots["type"], spots["offset"]) == (
            built.at[f"tensor {name}"], built.at[f"{name}:ne"], built.at[f"{name}:type"], built.at[f"{name}:offset"])


@pytest.mark.parametrize("name", ["writer", "vocab", "smollm2-kv"])
def test_seed_files_parse(tmp_path, name):
    data = seed(name)
    path = write(tmp_path / "seed.gguf", data)
    assert open_or_error(path, data, measure=True) is None
    with gguf.open(path) as f:
        layout = walk_seed(name)
        assert f.header_size == layout.header_end and list(f.metadata) == list(layout.keys)
        assert {n: t.offset - f.data_offset for n, t in f.tensors.items()} == {
            n: int.from_bytes(data[s["offset"]: s["offset"] + 8], "little") for n, s in layout.tensors.items()}
        if name == "writer":
            assert f.alignment == 16 and len(f.tensors) == 7 and f.metadata["general.name"] == "wrïter ✓"
            assert f.types["test.nested"] == gguf.ArrayType(V.ARRAY, (
                gguf.ArrayType(V.INT32), gguf.ArrayType(V.FLOAT32), gguf.ArrayType(V.STRING)))
        else:
            assert len(f.metadata["tokenizer.ggml.tokens"]) > 30000 and not f.tensors


# ---------------------------------------------------------------------------------------------------------------
# Truncation


@pytest.mark.parametrize("make", [tiny, rich])
def test_truncated_at_every_byte(tmp_path, make):
    built = make()
    data = built.data
    layout = walk(data)
    sizes = {name: len(raw) for name, _, _, raw in (TINY_TENSORS if make is tiny else RICH_TENSORS)}
    data_end = max(built.at[f"data {n}"] + sizes[n] for n in sizes)
    assert data_end < len(data)  # the last tensor's padding is not needed
    path = tmp_path / "cut.gguf"
    for cut in range(len(data) + 1):
        err = open_or_error(write(path, data[:cut]), data[:cut])
        if cut >= data_end:
            assert err is None, (cut, str(err))
            continue
        assert isinstance(err, GGUFError), f"a file cut at {cut} opened"
        if cut == 0:
            assert (err.offset, err.field) == (0, "magic") and "empty" in str(err)
        elif cut < layout.header_end:
            # the error points at the start of the field that ran out, or at the count that cannot fit
            assert err.offset <= cut and err.offset in layout.starts, (cut, str(err))
            assert "truncated" in str(err) or "cannot fit" in str(err), (cut, str(err))
        else:
            # the header is whole: the first tensor whose data runs past the cut is named, at its offset field
            first = next(n for n in sizes if built.at[f"data {n}"] + sizes[n] > cut)
            assert (err.offset, err.field) == (built.at[f"{first}:offset"], f"tensor {first!r}"), (cut, str(err))
            assert "past the end of the file" in str(err)


def test_truncated_real_vocab_file(tmp_path):
    data = seed("vocab")
    layout = walk_seed("vocab")
    path = tmp_path / "cut.gguf"
    cuts = list(range(1, 300)) + list(range(300, len(data), 4099)) + [len(data) - 1]
    for cut in cuts:
        err = open_or_error(write(path, data[:cut]), data[:cut])
        assert isinstance(err, GGUFError), f"vocab file cut at {cut} opened"
        assert err.offset <= cut and err.offset in layout.starts, (cut, str(err))


def test_smollm2_header_without_its_data(tmp_path):
    header = smollm2_header()
    layout = walk(header)
    with gguf.open(SMOLLM2_FILE) as f:
        # in header order, the first tensor whose data does not fit in a file that ends with the header
        first = next(t for t in f.tensors.values() if t.offset + t.nbytes > len(header))
    expect_error(tmp_path, header, layout.tensors[first.name]["offset"], f"tensor {first.name!r}",
                 message="runs past the end of the file")
    # cut inside the tensor infos: the error names a field that starts at or before the cut
    path = tmp_path / "cut.gguf"
    for cut in range(layout.kv_end, layout.header_end, 997):
        err = open_or_error(write(path, header[:cut]), header[:cut])
        assert isinstance(err, GGUFError) and err.offset <= cut and err.offset in layout.starts, (cut, str(err))


def test_empty_file(tmp_path):
    expect_error(tmp_path, b"", 0, "magic", message="empty")


# ---------------------------------------------------------------------------------------------------------------
# Magic and version


@pytest.mark.parametrize("magic", [b"GGUX", b"\0\0\0\0", b"FUGG", b"PK\x03\x04", b"gguf"])
def test_wrong_magic(tmp_path, magic):
    expect_error(tmp_path, magic + tiny().data[4:], 0, "magic", message="not a GGUF file")


@pytest.mark.parametrize("magic", [b"lmgg", b"fmgg", b"tjgg"])
def test_legacy_magic(tmp_path, magic):
    expect_error(tmp_path, magic + tiny().data[4:], 0, "magic", message="legacy GGML/GGMF/GGJT")


def test_version_1(tmp_path):
    expect_error(tmp_path, patched(tiny().data, 4, "<I", 1), 4, "version", message="version 1 is not supported")


@pytest.mark.parametrize("version", [2, 3])
def test_big_endian_file(tmp_path, version):
    data = build(TINY_KVS, TINY_TENSORS, version=version, endian=">").data
    expect_error(tmp_path, data, 4, "version", message=f"big-endian GGUF (version {version}) is not supported")


@pytest.mark.parametrize("version", [0, 4, 2**31, 2**32 - 1])
def test_unknown_version(tmp_path, version):
    expect_error(tmp_path, patched(tiny().data, 4, "<I", version), 4, "version", message="unsupported GGUF version")


@pytest.mark.parametrize("size, offset, name, message", [
    (1, 0, "magic", "truncated"), (3, 0, "magic", "truncated"), (4, 4, "version", "truncated"),
    (7, 4, "version", "truncated"), (8, 8, "tensor count", "truncated"), (15, 8, "tensor count", "truncated"),
    (16, 8, "tensor count", "tensor count 2 cannot fit in the 0 bytes left"),
    (23, 8, "tensor count", "tensor count 2 cannot fit in the 7 bytes left"),
])
def test_tiny_prefixes(tmp_path, size, offset, name, message):
    err = expect_error(tmp_path, tiny().data[:size], offset, name, message=message)
    assert err.field == name


# ---------------------------------------------------------------------------------------------------------------
# Metadata


@pytest.mark.parametrize("vtype", [13, 255, 2**31, 2**32 - 1])
@pytest.mark.parametrize("key", ["test.u8", "test.string", "test.arr.nested", "tëst.ünïcode.名前"])
def test_unknown_value_type(tmp_path, key, vtype):
    built = rich()
    expect_error(tmp_path, patched(built.data, built.at[f"{key}:type"], "<I", vtype), built.at[f"{key}:type"],
                 repr(key), message=f"unknown metadata value type {vtype}")


@pytest.mark.parametrize("where", ["test.arr.uint32:value", "test.arr.string:value", "test.arr.nested:value",
                                   "test.arr.nested:value[2]", "test.arr.nested:value[2][1]",
                                   "test.arr.deep:value[0][0][0][0][0][0][0]"])
def test_unknown_array_element_type(tmp_path, where):
    built = rich()
    key = where.split(":")[0]
    expect_error(tmp_path, patched(built.data, built.at[where], "<I", 13), built.at[where], repr(key),
                 message="unknown metadata value type 13")


@pytest.mark.parametrize("value", [2, 0x80, 255])
def test_bool_value_not_0_or_1(tmp_path, value):
    built = rich()
    at = built.at["test.bool:value"]
    expect_error(tmp_path, patched(built.data, at, "<B", value), at, "'test.bool'",
                 message=f"bool value {value} is neither 0 nor 1")


@pytest.mark.parametrize("where", ["test.arr.bool:value[0]", "test.arr.bool:value[3]",
                                   "test.arr.nested:value[2][2][0]"])
def test_bool_array_item_not_0_or_1(tmp_path, where):
    built = rich()
    at = built.at[where]
    expect_error(tmp_path, patched(built.data, at, "<B", 2), at, repr(where.split(":")[0]),
                 message="is neither 0 nor 1")


ABSURD = [2**32, 2**40, 2**62, 2**63, 2**64 - 1]


@pytest.mark.parametrize("count", ABSURD)
@pytest.mark.parametrize("where", ["test.arr.uint8", "test.arr.float64", "test.arr.string", "test.arr.empty",
                                   "test.arr.nested", "test.arr.nested:value[1]", "test.arr.nested:value[2]"])
def test_absurd_array_count(tmp_path, where, count):
    built = rich()
    label = where if ":" in where else f"{where}:value"
    at = built.at[f"{label}:count"]
    expect_error(tmp_path, patched(built.data, at, "<Q", count), at, repr(where.split(":")[0]),
                 message=f"count {count} cannot fit")


@pytest.mark.parametrize("length", ABSURD + [10_000])
@pytest.mark.parametrize("where, field_name", [
    ("test.string:value", "'test.string'"),
    ("test.u8", "metadata key 2"),  # the key itself: the third entry
    ("test.arr.string:value[2]", "'test.arr.string'"),
    ("test.arr.nested:value[1][0]", "'test.arr.nested'"),
    ("tensor blk.0.attn_q.weight", "tensor info 2"),
])
def test_absurd_string_length(tmp_path, where, field_name, length):
    built = rich()
    at = built.at[where]
    err = expect_error(tmp_path, patched(built.data, at, "<Q", length), at, field_name,
                       message=f"string length count {length} cannot fit")
    assert err.field == field_name.strip("'") or field_name in err.field


@pytest.mark.parametrize("count", ABSURD)
@pytest.mark.parametrize("which, offset, name", [("n_tensors", 8, "tensor count"), ("n_kv", 16, "metadata count")])
def test_absurd_header_counts(tmp_path, which, offset, name, count):
    err = expect_error(tmp_path, patched(rich().data, offset, "<Q", count), offset, name, message=f"{count}")
    assert err.field == name


def test_counts_that_fit_alone_but_not_together(tmp_path):
    data = rich().data
    n_tensors = (len(data) - 24) // 24  # fits on its own, not with the metadata entries before the tensor infos
    expect_error(tmp_path, patched(data, 8, "<Q", n_tensors), 8, "tensor count",
                 message=f"{len(RICH_KVS)} metadata entries and {n_tensors} tensors cannot fit in the file")


def test_duplicate_key(tmp_path):
    built = build([("dup.a", V.UINT32, 1), ("other", V.STRING, "x"), ("dup.b", V.FLOAT32, 2.0)])
    at = built.at["dup.b"]
    data = built.data[: at + 8] + b"dup.a" + built.data[at + 8 + 5:]
    err = expect_error(tmp_path, data, at, "metadata key 2", message="duplicate metadata key 'dup.a'")
    assert err.field == "metadata key 2"


@pytest.mark.parametrize("value, vtype", [
    (48, V.UINT32), (0, V.UINT32), (3, V.UINT32), (2**31 + 1, V.UINT32), (2**32 - 1, V.UINT32),
    (64, V.UINT64), (64, V.INT32), (64, V.UINT16), (64.0, V.FLOAT32), (1, V.BOOL), ("32", V.STRING),
    ((V.UINT32, [32]), V.ARRAY),
])
def test_bad_alignment(tmp_path, value, vtype):
    built = build([("general.architecture", V.STRING, "x"), ("general.alignment", vtype, value)], TINY_TENSORS)
    err = expect_error(tmp_path, built.data, built.at["general.alignment"], "general.alignment",
                       message="alignment must be a non-zero power of two stored as UINT32")
    assert err.field == "general.alignment"


@pytest.mark.parametrize("alignment", [1, 8, 64, 4096, 2**31])
def test_good_alignments(tmp_path, alignment):
    if alignment == 2**31:  # a valid value; the tensors cannot fit in a small file at that alignment
        built = build([("general.alignment", V.UINT32, alignment)], TINY_TENSORS, alignment=32)
        expect_error(tmp_path, built.data, built.at["a:offset"], "tensor 'a'", message="past the end")
        return
    built = build([("general.alignment", V.UINT32, alignment)], TINY_TENSORS, alignment=alignment)
    path = write(tmp_path / "ok.gguf", built.data)
    assert open_or_error(path, built.data) is None
    with gguf.open(path) as f:
        assert f.alignment == alignment and f.tensors["b"].offset == built.at["data b"]


def test_nesting_limit(tmp_path):
    ok = build([("deep", V.ARRAY, nested(8))])
    path = write(tmp_path / "ok.gguf", ok.data)
    with gguf.open(path) as f:
        v = f.metadata["deep"]
        for _ in range(7):
            v = v[0]
        assert v.tolist() == [7]
    too_deep = build([("deep", V.ARRAY, nested(9))])
    at = too_deep.at["deep:value" + "[0]" * 8]  # the ninth array's element type
    expect_error(tmp_path, too_deep.data, at, "'deep'", message="arrays nested deeper than 8")
    # a hostile file nests far deeper (and claims more than fits); it stops at the same place
    hostile = bytearray(too_deep.data[: too_deep.at["deep:value"]])
    hostile += struct.pack("<IQ", V.ARRAY, 1) * 100_000 + struct.pack("<IQ", V.UINT8, 2**60)
    expect_error(tmp_path, bytes(hostile), at, "'deep'", message="arrays nested deeper than 8")


