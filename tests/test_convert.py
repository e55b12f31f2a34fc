"""gpt4all_core.convert and `gpt4all-core convert`: Hugging Face BERT folders to GGUF. llama.cpp
(llama-cpp-python, test-only) loads what we write and tokenizes as we do; the metadata keys and
types, tensor names, types and bytes are llama.cpp's converter's (its Q8_0 quantizer is the `gguf`
package's, which we match byte for byte); bad folders raise errors that name the file and key or
tensor, and leave no file behind."""
from __future__ import annotations

import json

import gguf as gguf_py
import llama_cpp
import numpy as np
import pytest
from bert_files import MINILM_NAME, TINY_CONFIG, copy_folder, hf_tensors, minilm_folder, tiny_bert_folder
from bert_reference import ReferenceBert, cosine
from llama_oracle import assert_same_tokens
from safetensors.numpy import load_file, save_file

from gpt4all_core import cli, models
from gpt4all_core.convert import convert, expected_shapes
from gpt4all_core.errors import ConversionError, UnsupportedModelError
from gpt4all_core.gguf import GGMLType, GGUFValueType
from gpt4all_core.gguf import open as gguf_open
from gpt4all_core.tokenizer import Tokenizer, TokenType

V = GGUFValueType
MINILM_METADATA = {  # key: (value, GGUF type), as llama.cpp's converter writes them
    "general.architecture": ("bert", V.STRING), "general.name": (MINILM_NAME, V.STRING),
    "bert.context_length": (512, V.UINT32), "bert.embedding_length": (384, V.UINT32),
    "bert.feed_forward_length": (1536, V.UINT32), "bert.block_count": (6, V.UINT32),
    "bert.attention.head_count": (12, V.UINT32), "bert.attention.causal": (False, V.BOOL),
    "bert.pooling_type": (1, V.UINT32), "tokenizer.ggml.model": ("bert", V.STRING),
    "tokenizer.ggml.token_type_count": (2, V.UINT32), "tokenizer.ggml.bos_token_id": (101, V.UINT32),
    "tokenizer.ggml.eos_token_id": (102, V.UINT32), "tokenizer.ggml.cls_token_id": (101, V.UINT32),
    "tokenizer.ggml.seperator_token_id": (102, V.UINT32), "tokenizer.ggml.unknown_token_id": (100, V.UINT32),
    "tokenizer.ggml.padding_token_id": (0, V.UINT32), "tokenizer.ggml.mask_token_id": (103, V.UINT32),
    "tokenizer.ggml.normalizer.lowercase": (True, V.BOOL), "general.quantization_version": (2, V.UINT32),
}
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}


@pytest.mark.parametrize("kind", ["f32", "f16", "q8_0"])
def test_llama_cpp_loads_our_file(minilm_gguf, kind):
    path = minilm_gguf(kind)
    llama = llama_cpp.Llama(model_path=str(path), embedding=True, n_ctx=512, verbose=False)
    assert (llama.n_embd(), llama._model.n_ctx_train(), llama.n_vocab()) == (384, 512, 30522)
    assert llama.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_MEAN
    with gguf_open(path) as f:
        assert_same_tokens(Tokenizer.from_gguf(f), llama)


@pytest.mark.parametrize("kind", ["f32", "f16", "q8_0"])
def test_metadata_and_tensors(minilm_gguf, kind):
    with gguf_open(minilm_gguf(kind)) as f:
        for key, (value, vtype) in MINILM_METADATA.items():
            assert (f.metadata[key], f.types[key]) == (value, vtype), key
        assert (f.metadata["general.file_type"], f.types["general.file_type"]) == (FILE_TYPE[kind], V.UINT32)
        assert f.metadata["bert.attention.layer_norm_epsilon"] == pytest.approx(1e-12)
        assert f.types["bert.attention.layer_norm_epsilon"] == V.FLOAT32
        hp = {"embedding_length": 384, "feed_forward_length": 1536, "block_count": 6, "context_length": 512,
              "vocab_size": 30522, "type_vocab_size": 2}
        shapes = expected_shapes(hp)
        assert {n: tuple(t.shape) for n, t in f.tensors.items()} == shapes  # pooler and position_ids dropped
        big = GGMLType[kind.upper()]
        for name, t in f.tensors.items():
            always_f32 = len(t.shape) == 1 or name in ("position_embd.weight", "token_types.weight")
            assert t.type == (GGMLType.F32 if always_f32 else big), name


def test_vocabulary_spelling(minilm_gguf):
    """WordPiece in SentencePiece spelling, as llama.cpp's converter writes it."""
    with gguf_open(minilm_gguf("f16")) as f:
        tokens, types = f.metadata["tokenizer.ggml.tokens"], f.metadata["tokenizer.ggml.token_type"]
    vocab = (minilm_folder() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(tokens) == len(vocab) == 30522
    specials = {i for i, t in enumerate(types) if t == TokenType.CONTROL}
    assert specials == {0, 100, 101, 102, 103} and tokens[101] == "[CLS]"
    for i, piece in enumerate(vocab):
        if i not in specials:
            assert tokens[i] == (piece[2:] if piece.startswith("##") else "\u2581" + piece)
    assert tokens[vocab.index("hello")] == "\u2581hello" and tokens[vocab.index("##ing")] == "ing"


@pytest.mark.parametrize("kind", ["f32", "f16", "q8_0"])
def test_tensor_bytes(minilm_gguf, kind):
    """F32 values as stored, F16 by rounding, Q8_0 byte for byte as the gguf package (llama.cpp's
    converter) quantizes them."""
    raw = load_file(str(minilm_folder() / "model.safetensors"))
    with gguf_open(minilm_gguf(kind)) as f:
        for name, hf in (("blk.2.ffn_up.weight", "encoder.layer.2.intermediate.dense.weight"),
                         ("token_embd.weight", "embeddings.word_embeddings.weight"),
                         ("blk.5.attn_output_norm.bias", "encoder.layer.5.attention.output.LayerNorm.bias")):
            t, want = f.tensors[name], raw[hf]
            if t.type == GGMLType.F32:
                assert np.array_equal(t.data, want)
            elif t.type == GGMLType.F16:
                assert np.array_equal(t.data, want.astype(np.float16))
            else:
                ref = gguf_py.quants.quantize(want, gguf_py.GGMLQuantizationType.Q8_0)
                assert np.array_equal(np.asarray(t.data).reshape(ref.shape), ref), name


def test_tokenizer_json_alone_gives_the_same_vocabulary(minilm_gguf, tmp_path):
    src = copy_folder(minilm_folder(), tmp_path / "no-vocab-txt", skip=("vocab.txt",))
    out = convert(src, tmp_path / "tj.gguf", "q8_0", name=MINILM_NAME)
    with gguf_open(out) as a, gguf_open(minilm_gguf("q8_0")) as b:
        for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"):
            assert list(a.metadata[key]) == list(b.metadata[key]), key


def test_tiny_model_runs_in_both_engines(tmp_path):
    """A tiny random BERT (folder written here): our embeddings against the numpy BERT of its
    safetensors, and llama.cpp loads it too."""
    src = tiny_bert_folder(tmp_path / "tiny")
    out = convert(src, tmp_path / "tiny.gguf", "f32")
    ref = ReferenceBert.from_hf(src)
    with models.load(out) as model:
        assert model.name == "tiny"
        seqs = [model.frame(model.tokenizer.encode(t, add_special=False)) for t in ("the cat sat", "hello world .")]
        assert seqs[0] == [3, 6, 7, 8, 4]
        got = model.embed_tokens(seqs)
    assert min(cosine(a, ref.embed(s)) for a, s in zip(got, seqs)) > 0.9999
    llama = llama_cpp.Llama(model_path=str(out), embedding=True, n_ctx=16, n_batch=16, n_ubatch=16, verbose=False)
    assert llama.tokenize(b"the cat sat") == seqs[0]
    assert cosine(llama.embed("the cat sat", normalize=True), got[0]) > 0.9999


def test_old_names_and_prefixes(tmp_path):
    """BertForMaskedLM checkpoints: "bert." prefixes, gamma/beta layer-norm names, and heads we drop."""
    tensors = hf_tensors(TINY_CONFIG)
    renamed = {}
    for name, value in tensors.items():
        name = "bert." + name
        if name.endswith("LayerNorm.weight"):
            name = name[:-len("weight")] + "gamma"
        elif name.endswith("LayerNorm.bias"):
            name = name[:-len("bias")] + "beta"
        renamed[name] = value
    renamed["cls.predictions.bias"] = np.zeros(TINY_CONFIG["vocab_size"], np.float32)  # the MLM head: dropped
    a = convert(tiny_bert_folder(tmp_path / "plain"), tmp_path / "a.gguf", "f32")
    b = convert(tiny_bert_folder(tmp_path / "mlm", {"architectures": ["BertForMaskedLM"]}, renamed),
                tmp_path / "b.gguf", "f32")
    with gguf_open(a) as fa, gguf_open(b) as fb:
        assert fa.tensors.keys() == fb.tensors.keys()
        for name in fa.tensors:
            assert np.array_equal(fa.tensors[name].data, fb.tensors[name].data), name


def test_sharded_weights(tmp_path):
    tensors = hf_tensors(TINY_CONFIG)
    src = tiny_bert_folder(tmp_path / "sharded")
    (src / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, part in shards.items():
        save_file({n: tensors[n] for n in part}, str(src / file))
    (src / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {n: f for f, part in shards.items() for n in part}}))
    a = convert(src, tmp_path / "a.gguf", "f16")
    b = convert(tiny_bert_folder(tmp_path / "whole"), tmp_path / "b.gguf", "f16")
    with gguf_open(a) as fa, gguf_open(b) as fb:
        for name in fb.tensors:
            assert np.array_equal(fa.tensors[name].data, fb.tensors[name].data), name


@pytest.mark.parametrize("modules, pooling, expected", [
    (None, None, 1), ({"pooling_mode_cls_token": True}, None, 2), ({"pooling_mode_mean_tokens": True}, None, 1),
    ({"pooling_mode_lasttoken": True}, None, 3), ({"pooling_mode_cls_token": True}, "mean", 1), (None, "cls", 2),
])
def test_pooling_type(tmp_path, modules, pooling, expected):
    """From the sentence-transformers Pooling module when there is one (as llama.cpp's converter
    reads it), mean otherwise; the pooling argument wins."""
    src = tiny_bert_folder(tmp_path / "st")
    if modules is not None:
        (src / "modules.json").write_text(json.dumps([{"idx": 0, "path": "", "type": "x.Transformer"},
                                                      {"idx": 1, "path": "1_Pooling", "type": "x.Pooling"}]))
        (src / "1_Pooling").mkdir()
        (src / "1_Pooling" / "config.json").write_text(json.dumps(modules))
    with gguf_open(convert(src, tmp_path / "p.gguf", "f32", pooling=pooling)) as f:
        assert f.metadata["bert.pooling_type"] == expected


def break_folder(path, how):
    """A tiny BERT folder with one thing wrong; returns (folder, error type, message pattern)."""
    if how == "not a folder":
        return path / "nowhere", ConversionError, "not a folder"
    changes = {"llama": {"model_type": "llama", "architectures": ["LlamaForCausalLM"]},
               "classifier": {"architectures": ["BertForSequenceClassification"]},
               "relative positions": {"position_embedding_type": "relative_key"},
               "relu": {"hidden_act": "relu"}, "no hidden_size": {"hidden_size": None},
               "bad eps": {"layer_norm_eps": "small"}}.get(how)
    tensors = hf_tensors(TINY_CONFIG)
    if how == "tensor missing":
        del tensors["encoder.layer.1.output.dense.weight"]
    elif how == "wrong shape":
        tensors["encoder.layer.0.attention.self.key.weight"] = np.zeros((32, 31), np.float32)
    elif how == "unknown tensor":
        tensors["encoder.layer.0.attention.rotary.weight"] = np.zeros(4, np.float32)
    elif how == "integer weights":
        tensors["embeddings.LayerNorm.weight"] = np.ones(32, np.int32)
    vocab = [t for t in tiny_vocab() if t != "[CLS]"] if how == "no [CLS]" else tiny_vocab()
    src = tiny_bert_folder(path / "src", changes, tensors, None if how == "no vocabulary" else vocab)
    if how == "no config":
        (src / "config.json").unlink()
    elif how == "config not json":
        (src / "config.json").write_text("{model_type: bert")
    elif how in ("no weights", "only pytorch weights"):
        (src / "model.safetensors").unlink()
        if how == "only pytorch weights":
            (src / "pytorch_model.bin").write_bytes(b"\0")
    elif how == "weights not safetensors":
        (src / "model.safetensors").write_bytes(b"not a safetensors file at all")
    return src, *BROKEN[how]


def tiny_vocab():
    from bert_files import TINY_VOCAB
    return TINY_VOCAB + [f"w{i}" for i in range(TINY_CONFIG["vocab_size"] - len(TINY_VOCAB))]


BROKEN = {
    "not a folder": (ConversionError, "not a folder"),
    "no config": (ConversionError, r"config\.json: missing"),
    "config not json": (ConversionError, r"config\.json: not readable JSON"),
    "llama": (UnsupportedModelError, r"config\.json: model_type 'llama'"),
    "classifier": (UnsupportedModelError, "BertForSequenceClassification"),
    "relative positions": (UnsupportedModelError, "position_embedding_type = 'relative_key'"),
    "relu": (UnsupportedModelError, "hidden_act = 'relu'"),
    "no hidden_size": (ConversionError, r"config\.json: hidden_size: missing"),
    "bad eps": (ConversionError, "layer_norm_eps"),
    "no weights": (ConversionError, r"model\.safetensors: missing"),
    "only pytorch weights": (ConversionError, r"PyTorch \.bin weights are not read"),
    "weights not safetensors": (ConversionError, "not a readable safetensors file"),
    "no vocabulary": (ConversionError, "neither vocab.txt nor tokenizer.json"),
    "no [CLS]": (ConversionError, r"cls_token '\[CLS\]' is not in the vocabulary"),
    "tensor missing": (ConversionError, r"tensors missing for llama\.cpp's bert: blk\.1\.ffn_down\.weight"),
    "wrong shape": (ConversionError, r"'encoder\.layer\.0\.attention\.self\.key\.weight': shape \(32, 31\)"),
    "unknown tensor": (ConversionError, r"'encoder\.layer\.0\.attention\.rotary\.weight': not part of a BERT"),
    "integer weights": (ConversionError, r"'embeddings\.LayerNorm\.weight': dtype int32"),
}


@pytest.mark.parametrize("how", list(BROKEN))
def test_bad_folders(tmp_path, how):
    src, error, pattern = break_folder(tmp_path, how)
    out = tmp_path / "out.gguf"
    with pytest.raises(error, match=pattern):
        convert(src, out, "f16")
    assert not out.exists() and not list(tmp_path.glob("out.gguf*"))


def test_bad_arguments(tmp_path):
    src = tiny_bert_folder(tmp_path / "tiny")
    with pytest.raises(ValueError, match="out_type must be one of f32, f16, q8_0"):
        convert(src, tmp_path / "x.gguf", "q4_0")
    with pytest.raises(ValueError, match="pooling"):
        convert(src, tmp_path / "x.gguf", "f16", pooling="max")


def test_cli_convert(tmp_path, capsys):
    src = tiny_bert_folder(tmp_path / "tiny")
    out = tmp_path / "cli.gguf"
    assert cli.main(["convert", str(src), str(out), "--type", "q8_0", "--pooling", "cls", "--name", "tiny-bert"]) == 0
    assert str(out) in capsys.readouterr().out
    with gguf_open(out) as f:
        assert (f.metadata["general.name"], f.metadata["bert.pooling_type"], f.metadata["general.file_type"]) == \
            ("tiny-bert", 2, 7)
    (src / "config.json").unlink()
    assert cli.main(["convert", str(src), str(tmp_path / "no.gguf")]) == 2
    assert "gpt4all-core convert: error:" in capsys.readouterr().err
