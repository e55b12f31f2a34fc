"""The GGML type table agrees with ggml's own (through the gguf package)."""
import gguf as gguf_ref

from gpt4all_core.gguf import TYPE_TRAITS, GGMLType, GGUFValueType, row_nbytes, tensor_nbytes


def test_every_ggml_type_matches_ggml():
    ref = {t.name: (int(t), gguf_ref.GGML_QUANT_SIZES[t]) for t in gguf_ref.GGMLQuantizationType}
    ours = {t.name: (int(t), tuple(TYPE_TRAITS[t])) for t in GGMLType}
    assert ours == ref


def test_value_types_match_gguf():
    assert {t.name: int(t) for t in GGUFValueType} == {t.name: int(t) for t in gguf_ref.GGUFValueType}


def test_byte_sizes():
    assert row_nbytes(GGMLType.Q4_0, 4096) == 4096 // 32 * 18
    assert tensor_nbytes(GGMLType.Q6_K, (512, 3, 2)) == 2 * 210 * 6
    assert tensor_nbytes(GGMLType.F16, (7, 5)) == 70
