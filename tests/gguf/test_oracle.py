"""Every real GGUF file parses to what the `gguf` package (llama.cpp's own reader) sees,
and our writer reproduces each file byte for byte."""
from __future__ import annotations

import filecmp

import gguf as gguf_ref  # test-only oracle
import numpy as np

from gpt4all_core import gguf
from gpt4all_core.gguf import ArrayType, GGUFValueType


def raw_string(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def assert_field_equal(key: str, ours, our_type, field) -> None:
    main = GGUFValueType(field.types[0])
    if main != GGUFValueType.ARRAY:
        assert our_type == main, key
        raw = field.parts[field.data[0]]
        if main == GGUFValueType.STRING:
            assert raw_string(ours) == bytes(raw), key
        else:
            assert ours == raw[0], key
            assert type(ours) is (bool if main == GGUFValueType.BOOL else float if raw.dtype.kind == "f" else int)
        return
    elem = GGUFValueType(field.types[-1])
    assert isinstance(our_type, ArrayType) and our_type.elem == elem, key
    if elem == GGUFValueType.STRING:
        assert [raw_string(s) for s in ours] == [bytes(field.parts[i]) for i in field.data], key
    else:
        ref = np.concatenate([field.parts[i] for i in field.data]) if field.data else np.array([])
        assert ours.dtype == ref.dtype or len(ref) == 0, key
        assert np.array_equal(ours, ref), key


def test_reader_matches_gguf_package(real_gguf):
    ref = gguf_ref.GGUFReader(real_gguf)
    with gguf.open(real_gguf) as ours:
        fields = {name: f for name, f in ref.fields.items() if not name.startswith("GGUF.")}
        assert list(ours.metadata) == list(fields)
        assert ours.version == ref.fields["GGUF.version"].parts[0][0]
        for key, field in fields.items():
            assert_field_equal(key, ours.metadata[key], ours.types[key], field)

        assert list(ours.tensors) == [t.name for t in ref.tensors]
        for rt in ref.tensors:
            t = ours.tensors[rt.name]
            assert t.type == rt.tensor_type
            assert t.ne == tuple(int(d) for d in rt.shape)
            assert (t.n_elements, t.nbytes, t.offset) == (rt.n_elements, rt.n_bytes, rt.data_offset)
            assert t.data.tobytes() == rt.data.tobytes()
            if t.type != gguf.GGMLType.BF16:  # gguf gives BF16 as bytes, we as uint16 bit patterns
                assert t.data.shape == rt.data.shape and t.data.dtype == rt.data.dtype


def test_writer_reproduces_file_exactly(real_gguf, tmp_path):
    out = tmp_path / real_gguf.name
    with gguf.open(real_gguf) as src:
        w = gguf.GGUFWriter(out, alignment=src.alignment, version=src.version)
        w.add_metadata_from(src)
        for t in src.tensors.values():
            w.add_tensor(t.name, t.data, ggml_type=t.type, shape=t.shape)
        w.write()
    assert filecmp.cmp(real_gguf, out, shallow=False)


def test_real_files_cover_the_expected_set(real_gguf):
    """The fixtures hold what ../shared/MODELS.md says (a missing file must fail, not shrink the set)."""
    with gguf.open(real_gguf) as f:
        arch = f.architecture
        if real_gguf.name.startswith("SmolLM2"):
            assert (arch, len(f.tensors), f.get("llama.block_count"), f.get("llama.embedding_length")) == ("llama", 272, 30, 576)
            assert "output.weight" not in f.tensors  # tied output
            types = {t.type.name for t in f.tensors.values()}
            assert types == {"Q4_1", "Q8_0", "F32"} and f.tensors["token_embd.weight"].type.name == "Q8_0"
        elif real_gguf.name.startswith("gemma"):
            assert (arch, f.get("gemma3.block_count"), len(f["tokenizer.ggml.tokens"])) == ("gemma3", 18, 262144)
            assert {t.type.name for t in f.tensors.values()} == {"Q5_0", "Q4_K", "Q6_K", "Q8_0", "F32"}
        else:
            assert not f.tensors and len(f["tokenizer.ggml.tokens"]) > 1000


def test_vocab_files_have_test_pairs(vocab_paths):
    paired = [p for p in vocab_paths if p.with_name(p.name + ".inp").exists() and p.with_name(p.name + ".out").exists()]
    assert len(paired) >= 15
