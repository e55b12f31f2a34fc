"""GGUFWriter: every value and tensor type round-trips through our reader and the gguf package's,
llama.cpp loads what we write, and bad input is refused with the key or tensor named."""
from __future__ import annotations

import os

import gguf as gguf_ref  # test-only oracle
import numpy as np
import pytest
from gguf import quants as ref_quants

from gpt4all_core import gguf
from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf import ArrayType, GGMLType, GGUFValueType
from gpt4all_core.gguf import writer as writer_module

V = GGUFValueType
RNG = np.random.default_rng(20261122)

SCALARS = {
    "t.u8": (200, V.UINT8), "t.i8": (-100, V.INT8), "t.u16": (60000, V.UINT16), "t.i16": (-30000, V.INT16),
    "t.u32": (4_000_000_000, V.UINT32), "t.i32": (-2_000_000_000, V.INT32), "t.f32": (0.1, V.FLOAT32),
    "t.bool": (True, V.BOOL), "t.str": ("héllo ✓ 世界 \U0001F600", V.STRING), "t.u64": (2**64 - 1, V.UINT64),
    "t.i64": (-(2**63), V.INT64), "t.f64": (-1.0e300, V.FLOAT64),
}
ARRAYS = {
    "a.f32": (RNG.standard_normal(17).astype(np.float32), ArrayType(V.FLOAT32)),
    "a.i32": (RNG.integers(-5, 5, 9, dtype=np.int32), ArrayType(V.INT32)),
    "a.u8": (np.arange(256, dtype=np.uint8), ArrayType(V.UINT8)),
    "a.bool": (np.array([True, False, True]), ArrayType(V.BOOL)),
    "a.f64": (np.array([1e-300, 2.5]), ArrayType(V.FLOAT64)),
    "a.str": (["", "a", "ü", "<|im_start|>"], ArrayType(V.STRING)),
    "a.empty": (np.array([], dtype=np.int64), ArrayType(V.INT64)),
}
NESTED = ([[1, 2, 3], ["x", "y"], [[0.5], []]],
          ArrayType(V.ARRAY, (ArrayType(V.INT32), ArrayType(V.STRING),
                              ArrayType(V.ARRAY, (ArrayType(V.FLOAT32), ArrayType(V.FLOAT32))))))


def quantized(ggml_type: GGMLType, shape: tuple[int, int]) -> np.ndarray:
    """Valid blocks of random data, made by the gguf package's quantizer."""
    return ref_quants.quantize(RNG.standard_normal(shape).astype(np.float32), gguf_ref.GGMLQuantizationType(ggml_type))


TENSORS = {
    "f32": (RNG.standard_normal((3, 5)).astype(np.float32), None),
    "f16": (RNG.standard_normal((2, 3, 4)).astype(np.float16), None),
    "f64": (RNG.standard_normal(7), None),
    "i8": (RNG.integers(-128, 127, (4, 4), dtype=np.int8), None),
    "i32": (RNG.integers(-9, 9, (1, 2, 3, 4), dtype=np.int32), None),
    "q4_0": (quantized(GGMLType.Q4_0, (3, 64)), GGMLType.Q4_0),
    "q8_0": (quantized(GGMLType.Q8_0, (2, 32)), GGMLType.Q8_0),
    "q5_1": (quantized(GGMLType.Q5_1, (1, 96)), GGMLType.Q5_1),
    "bf16": (quantized(GGMLType.BF16, (2, 8)).view(np.uint16), GGMLType.BF16),
}


@pytest.fixture(params=[(3, 32), (2, 64), (3, 1)], ids=["v3-align32", "v2-align64", "v3-align1"])
def every_type_file(request, tmp_path):
    version, alignment = request.param
    path = tmp_path / "every.gguf"
    w = gguf.GGUFWriter(path, alignment=alignment, version=version)
    for key, (value, vt) in {**SCALARS, **ARRAYS}.items():
        w.add(key, value, vt)
    w.add("a.nested", *NESTED)
    for name, (data, ggml_type) in TENSORS.items():
        w.add_tensor(name, data, ggml_type=ggml_type)
    w.write()
    return path, version, alignment


def test_every_type_round_trips_through_our_reader(every_type_file):
    path, version, alignment = every_type_file
    with gguf.open(path) as f:
        assert (f.version, f.alignment) == (version, alignment)
        for key, (value, vt) in SCALARS.items():
            assert f.types[key] == vt
            assert f.metadata[key] == (np.float32(value).item() if vt == V.FLOAT32 else value)
        for key, (value, vt) in ARRAYS.items():
            assert f.types[key] == vt
            assert list(f.metadata[key]) == list(value)
        assert f.types["a.nested"] == NESTED[1]
        inner = f.metadata["a.nested"]
        assert list(inner[0]) == [1, 2, 3] and inner[1] == ["x", "y"] and list(inner[2][0]) == [0.5]
        for name, (data, ggml_type) in TENSORS.items():
            t = f.tensors[name]
            assert t.offset % alignment == 0
            if ggml_type is None or ggml_type == GGMLType.BF16:
                assert t.shape == data.shape and np.array_equal(t.data, data)
            else:
                assert t.data.tobytes() == data.tobytes() and t.data.shape == data.shape


def test_every_type_reads_in_gguf_package(every_type_file):
    path, version, _ = every_type_file
    ref = gguf_ref.GGUFReader(path)
    assert ref.fields["GGUF.version"].parts[0][0] == version
    for key, (value, vt) in SCALARS.items():
        field = ref.fields[key]
        assert field.types == [vt]
        assert field.contents() == (np.float32(value).item() if vt == V.FLOAT32 else value)
    for key, (value, vt) in ARRAYS.items():
        # the gguf package records no element type for an empty array
        assert ref.fields[key].types == ([V.ARRAY, vt.elem] if len(value) else [V.ARRAY])
        assert list(ref.fields[key].contents()) == list(value)
    for t in ref.tensors:
        data, ggml_type = TENSORS[t.name]
        assert t.data.tobytes() == data.tobytes()
        assert int(t.tensor_type) == int(ggml_type or gguf.writer._TENSOR_TYPES_BY_DTYPE[data.dtype])


def test_known_keys_get_the_types_llama_cpp_expects(tmp_path):
    w = gguf.GGUFWriter(tmp_path / "k.gguf")
    w.add("general.architecture", "llama")
    w.add("llama.block_count", 2)
    w.add("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add("tokenizer.ggml.bos_token_id", 1)
    w.add("tokenizer.ggml.scores", [0, 1, 2])
    w.add("my.count", 3)
    w.write()
    with gguf.open(tmp_path / "k.gguf") as f:
        assert f.types["llama.block_count"] == V.UINT32
        assert f.types["llama.attention.layer_norm_rms_epsilon"] == V.FLOAT32
        assert f.types["tokenizer.ggml.bos_token_id"] == V.UINT32
        assert f.types["tokenizer.ggml.scores"] == ArrayType(V.FLOAT32)
        assert f.types["my.count"] == V.INT32


def test_bf16_rounding_matches_ggml():
    x = np.concatenate([RNG.standard_normal(1000).astype(np.float32) * 1e3,
                        np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 3.4e38], np.float32)])
    ref = ref_quants.quantize(x, gguf_ref.GGMLQuantizationType.BF16).view(np.uint16)
    assert np.array_equal(writer_module.float32_to_bf16_bits(x), ref)


@pytest.mark.parametrize("action, message", [
    (lambda w: (w.add("k", 1), w.add("k", 2)), "added twice"),
    (lambda w: w.add("k", 300, V.UINT8), "does not fit"),
    (lambda w: w.add("k", [300], ArrayType(V.UINT8)), "outside"),
    (lambda w: w.add("k", []), "empty array"),
    (lambda w: w.add("k", [1, "a"]), "mixes"),
    (lambda w: w.add("k", object()), "cannot store"),
    (lambda w: w.add("general.alignment", 48), "power of two"),
    (lambda w: w.add_tensor("x" * 64, np.zeros(4, np.float32)), "longer than"),
    (lambda w: (w.add_tensor("t", np.zeros(4, np.float32)), w.add_tensor("t", np.zeros(4, np.float32))), "added twice"),
    (lambda w: w.add_tensor("t", np.zeros((2, 18), np.uint8), ggml_type=GGMLType.Q4_0, shape=(2, 33)), "block size"),
    (lambda w: w.add_tensor("t", np.zeros(17, np.uint8), ggml_type=GGMLType.Q4_0, shape=(32,)), "takes 18"),
    (lambda w: w.add_tensor("t", np.zeros(4, np.uint32)), "cannot infer"),
    (lambda w: w.add_tensor("t", np.zeros(4, np.float32), ggml_type=GGMLType.I32), "must be int32"),
])
def test_bad_input_is_refused_naming_the_field(tmp_path, action, message):
    w = gguf.GGUFWriter(tmp_path / "bad.gguf")
    with pytest.raises(GGUFError, match=message) as e:
        action(w)
    assert e.value.field in ("k", "general.alignment", "tensor 't'", "tensor '" + "x" * 64 + "'")


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"previous contents")
    w = gguf.GGUFWriter(path)
    w.add_tensor("t", np.ones(8, np.float32))

    def disk_full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_module.np, "ascontiguousarray", disk_full)
    with pytest.raises(OSError):
        w.write()
    assert path.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == ["model.gguf"]
