"""Hostile GGUF tensor infos (dims, types, offsets, overlaps) and real files corrupted field by field:
each raises GGUFError naming the offset and the field at fault."""
from __future__ import annotations

import struct

import pytest
from gguf_craft import TINY_KVS, build, expect_error, patched, rich, seed, walk_seed, write
from gguf_property import open_or_error

from gpt4all_core import gguf
from gpt4all_core.gguf import GGMLType

# ---------------------------------------------------------------------------------------------------------------
# Tensor infos


def test_too_many_dims(tmp_path):
    built = rich()
    at = built.at["blk.0.ffn_up.weight:n_dims"]
    expect_error(tmp_path, patched(built.data, at, "<I", 5), at, "tensor 'blk.0.ffn_up.weight'",
                 message="5 dimensions (ggml allows at most 4)")
    expect_error(tmp_path, patched(built.data, at, "<I", 2**32 - 1), at, "tensor 'blk.0.ffn_up.weight'",
                 message="4294967295 dimensions")


@pytest.mark.parametrize("dim", [2**63, 2**64 - 1])
@pytest.mark.parametrize("label", ["token_embd.weight:ne0", "token_embd.weight:ne1", "output.weight:ne3"])
def test_dimension_beyond_int64(tmp_path, label, dim):
    built = rich()
    name, j = label.split(":")
    expect_error(tmp_path, patched(built.data, built.at[label], "<Q", dim), built.at[label], f"tensor {name!r}",
                 message=f"dimension {j[2:]} is {dim}, beyond int64")


@pytest.mark.parametrize("name, dims", [
    ("output.weight", {"ne1": 2**32, "ne2": 2**32}),  # 5 * 2**64 elements
    ("empty", {"ne1": 2**62}),  # no elements at all, yet no array can have that shape
    ("token_embd.weight", {"ne0": 0, "ne1": 2**61}),  # empty rows, 2**64 bytes of extent
])
def test_dimensions_overflow_int64(tmp_path, name, dims):
    built = rich()
    data = built.data
    for ne, d in dims.items():
        data = patched(data, built.at[f"{name}:{ne}"], "<Q", d)
    expect_error(tmp_path, data, built.at[f"{name}:ne0"], f"tensor {name!r}", message="overflow int64")


def test_empty_tensors_with_large_dims_are_readable(tmp_path):
    built = rich()
    data = patched(built.data, built.at["empty:ne1"], "<Q", 2**40)  # (0, 2**40): empty, numpy can shape it
    path = write(tmp_path / "ok.gguf", data)
    assert open_or_error(path, data) is None
    with gguf.open(path) as f:
        assert f.tensors["empty"].data.shape == (2**40, 0) and f.tensors["empty"].nbytes == 0


@pytest.mark.parametrize("type_id", [4, 5, 31, 99, 2**31, 2**32 - 1])
def test_unknown_ggml_type(tmp_path, type_id):
    built = rich()
    at = built.at["blk.0.attn_q.weight:type"]
    expect_error(tmp_path, patched(built.data, at, "<I", type_id), at, "tensor 'blk.0.attn_q.weight'",
                 message=f"unknown ggml type {type_id}")


@pytest.mark.parametrize("name, row, block", [
    ("blk.0.attn_q.weight", 48, "Q4_0 block size 32"),
    ("blk.0.ffn_up.weight", 1, "Q8_0 block size 32"),
    ("blk.0.ffn_down.weight", 128, "Q4_K block size 256"),
])
def test_row_not_whole_blocks(tmp_path, name, row, block):
    built = rich()
    at = built.at[f"{name}:ne0"]
    expect_error(tmp_path, patched(built.data, at, "<Q", row), at, f"tensor {name!r}",
                 message=f"row length {row} is not a multiple of the {block}")


def test_scalar_of_a_block_type(tmp_path):
    built = rich()  # "scalar" has no dimensions: one element, never a whole Q8_0 block
    at = built.at["scalar:type"]
    expect_error(tmp_path, patched(built.data, at, "<I", GGMLType.Q8_0), built.at["scalar:n_dims"], "tensor 'scalar'",
                 message="row length 1 is not a multiple")


@pytest.mark.parametrize("delta", [1, 4, 32, 63])
def test_misaligned_tensor_offset(tmp_path, delta):
    built = rich()  # alignment 64
    at = built.at["blk.0.ffn_up.weight:offset"]
    rel = struct.unpack_from("<Q", built.data, at)[0]
    expect_error(tmp_path, patched(built.data, at, "<Q", rel + delta), at, "tensor 'blk.0.ffn_up.weight'",
                 message=f"data offset {rel + delta} is not a multiple of the alignment 64")


@pytest.mark.parametrize("rel", [2**12, 2**40, 2**64 - 64])
def test_tensor_data_past_end(tmp_path, rel):
    built = rich()
    at = built.at["output.weight:offset"]
    expect_error(tmp_path, patched(built.data, at, "<Q", rel), at, "tensor 'output.weight'",
                 message="runs past the end of the file")


def test_tensor_dims_past_end(tmp_path):
    built = rich()
    data = patched(built.data, built.at["output.weight:ne1"], "<Q", 100)
    expect_error(tmp_path, data, built.at["output.weight:offset"], "tensor 'output.weight'",
                 message="runs past the end of the file")


@pytest.mark.parametrize("a, b, shift, blamed", [
    ("token_embd.weight", "blk.0.attn_norm.weight", 0, "blk.0.attn_norm.weight"),  # b moved onto a
    ("blk.0.attn_q.weight", "blk.0.ffn_up.weight", 64, "blk.0.ffn_up.weight"),  # into the middle of a's 72 bytes
    # of two overlapping tensors the later in the header is at fault, even when the earlier one moved
    ("blk.0.ffn_up.weight", "token_embd.weight", 0, "blk.0.ffn_up.weight"),
])
def test_overlapping_tensors(tmp_path, a, b, shift, blamed):
    built = rich()
    rel_a = struct.unpack_from("<Q", built.data, built.at[f"{a}:offset"])[0]
    data = patched(built.data, built.at[f"{b}:offset"], "<Q", rel_a + shift)
    err = expect_error(tmp_path, data, built.at[f"{blamed}:offset"], f"tensor {blamed!r}", message="overlap")
    assert err.field == f"tensor {blamed!r}" and repr(a) in str(err) and repr(b) in str(err)


def test_zero_size_tensors_may_share_offsets(tmp_path):
    built = rich()
    rel = struct.unpack_from("<Q", built.data, built.at["token_embd.weight:offset"])[0]
    data = patched(built.data, built.at["empty:offset"], "<Q", rel)
    assert open_or_error(write(tmp_path / "ok.gguf", data), data) is None


def test_duplicate_tensor_name(tmp_path):
    built = build(TINY_KVS, [("t.a", GGMLType.F32, (1,), b"\0" * 4), ("t.b", GGMLType.F32, (1,), b"\0" * 4)])
    at = built.at["tensor t.b"]
    data = built.data[: at + 8] + b"t.a" + built.data[at + 11:]
    err = expect_error(tmp_path, data, at, "tensor info 1", message="duplicate tensor name 't.a'")
    assert err.field == "tensor info 1"


# ---------------------------------------------------------------------------------------------------------------
# Real files, corrupted where the walker says the fields are


def _third_token_length(data: bytes, tokens: int) -> int:
    first = tokens + 12  # after the element type and the count
    second = first + 8 + struct.unpack_from("<Q", data, first)[0]
    return second + 8 + struct.unpack_from("<Q", data, second)[0]


@pytest.mark.parametrize("key, where, fmt, value, message", [
    ("tokenizer.ggml.tokens", lambda d, k: k["value"] + 4, "<Q", 2**62, "count 4611686018427387904 cannot fit"),
    ("tokenizer.ggml.tokens", lambda d, k: k["value"], "<I", 77, "unknown metadata value type 77"),
    ("tokenizer.ggml.tokens", lambda d, k: _third_token_length(d, k["value"]), "<Q", 2**40,
     "string length count 1099511627776 cannot fit"),
    ("tokenizer.ggml.scores", lambda d, k: k["value"] + 4, "<Q", 2**61, "count 2305843009213693952 cannot fit"),
    ("tokenizer.ggml.token_type", lambda d, k: k["type"], "<I", 2**32 - 1, "unknown metadata value type 4294967295"),
    ("tokenizer.ggml.model", lambda d, k: k["value"], "<Q", 10**7, "string length count 10000000 cannot fit"),
], ids=["tokens count", "tokens type", "token length", "scores count", "token_type type", "model length"])
def test_real_vocab_file_corruptions(tmp_path, key, where, fmt, value, message):
    data = seed("vocab")
    at = where(data, walk_seed("vocab").keys[key])
    expect_error(tmp_path, patched(data, at, fmt, value), at, repr(key), message=message)


