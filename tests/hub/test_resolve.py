"""Catalog names and URLs to local files, through the hub and through GPT4All's API: on disk first
(no network), downloaded when missing and allowed, md5 from the catalog checked."""
from __future__ import annotations

import hashlib

import pytest
from model_files import random_model

from gpt4all_core import GPT4All
from gpt4all_core import hub as g
from gpt4all_core.errors import ChecksumError, DownloadError, ModelNotFoundError


def catalog_entry(hub, name: str, data: bytes, **extra) -> dict:
    url = hub.add_file(name, data)
    return {"order": "a", "md5sum": hashlib.md5(data).hexdigest(), "name": name, "filename": name,
            "filesize": str(len(data)), "ramrequired": "1", "parameters": "1 million", "quant": "q8_0",
            "type": "LLaMA", "url": url, "promptTemplate": "%1", "systemPrompt": "", **extra}


def test_gpt4all_downloads_a_catalog_model_and_runs_it(hub, models):
    data = random_model("llama").read_bytes()
    hub.set_catalog([catalog_entry(hub, "tiny-llama.gguf", data, systemPrompt="Be brief.")])
    with pytest.raises(FileNotFoundError, match="tiny-llama.gguf.*allow_download=False"):
        GPT4All("tiny-llama", model_path=models, allow_download=False)
    with GPT4All("tiny-llama", model_path=models, n_ctx=64) as m:
        assert m.config["path"] == str(models / "tiny-llama.gguf") and m.config["systemPrompt"] == "Be brief."
        assert isinstance(m.generate("hello", max_tokens=3, temp=0), str)
    assert (models / "tiny-llama.gguf").read_bytes() == data
    n = len(hub.requests)
    hub.set_catalog(None)  # loading what is on disk needs no catalog and no network
    config = GPT4All.retrieve_model("tiny-llama.gguf", models)
    assert config["path"] == str(models / "tiny-llama.gguf") and len(hub.requests) == n


def test_catalog_md5_mismatch(hub, models):
    entry = catalog_entry(hub, "bad.gguf", b"x" * 1000)
    entry["md5sum"] = "f" * 32
    hub.set_catalog([entry])
    with pytest.raises(ChecksumError, match=f"bad.gguf: md5 mismatch: expected {'f' * 32}, got "
                       f"{hashlib.md5(b'x' * 1000).hexdigest()}"):
        g.resolve_model_file("bad.gguf", models)
    assert list(models.iterdir()) == []


def test_names_not_anywhere(hub, models):
    hub.set_catalog([])
    with pytest.raises(ModelNotFoundError, match=r"'nothing.gguf' is neither in .* nor in the GPT4All catalog"):
        g.resolve_model_file("nothing", models)
    with pytest.raises(ModelNotFoundError, match="model file not found: /no/such/file.gguf"):
        g.resolve_model_file("/no/such/file.gguf", models)
    with pytest.raises(FileNotFoundError):  # GPT4All's own error type, as the gpt4all package raises
        GPT4All.retrieve_model("nothing", models)


def test_local_path_and_default_folder(models, monkeypatch):
    f = models / "here.gguf"
    f.write_bytes(b"GGUF")
    assert g.resolve_model_file(str(f)) == f
    assert g.download_model(str(f)).result(timeout=10) == f  # `pull ./file`: nothing to fetch
    assert g.resolve_model_file("here") == f  # GPT4ALL_MODEL_DIR (conftest) is the default folder
    assert g.resolve_model_file("here.gguf", allow_download=False) == f


def test_url_and_split_urls(hub, models):
    parts = {f"big-0000{i}-of-00003.gguf": bytes([i]) * 3000 for i in (1, 2, 3)}
    for name, data in parts.items():
        hub.add_file(name, data)
    path = g.resolve_model_file(f"{hub.url}/files/big-00001-of-00003.gguf", models)
    assert path == models / "big-00001-of-00003.gguf"
    assert all((models / n).read_bytes() == d for n, d in parts.items())
    n = len(hub.requests)
    assert g.resolve_model_file(f"{hub.url}/files/big-00001-of-00003.gguf", models) == path
    assert len(hub.requests) == n  # on disk: no request


def test_download_model_controller(hub, models):
    seen = []
    data = b"abc" * 10_000
    hub.set_catalog([catalog_entry(hub, "c.gguf", data)])
    ctl = g.download_model("c.gguf", models, progress=lambda d, t: seen.append((d, t)))
    assert ctl.future.result(timeout=30) == models / "c.gguf" and ctl.fetched == [models / "c.gguf"]
    assert seen[-1] == (len(data), len(data))
    again = g.download_model("c.gguf", models)
    assert again.result(timeout=30) == models / "c.gguf" and again.fetched == []
    with pytest.raises(ValueError, match="expected hf:<user>/<repo>"):  # a malformed reference fails at once
        g.download_model("hf:x", models)


def test_nothing_leaves_this_machine(models, monkeypatch):
    """The bundled catalog's URLs are real; the test suite's guard (tests/conftest.py) stops them."""
    with pytest.raises(DownloadError, match="cannot connect to gpt4all.io .*tests may not reach gpt4all.io"):
        g.resolve_model_file("all-MiniLM-L6-v2.gguf2.f16.gguf", models)
    assert list(models.iterdir()) == []


def test_unsafe_file_names(hub, models):
    with pytest.raises(ValueError, match="is not a plain file name"):
        g.resolve_model_file(f"{hub.url}/files/..%2F..%2Fescape.gguf", models)
    with pytest.raises(ValueError, match="not a clean path"):
        g.resolve_model_file("hf:evil/repo/../x-Q4_0.gguf", models)


def test_catalog_urls_on_the_hub_get_the_token(hub, models, monkeypatch):
    from fake_hub import TOKEN
    hub.add_repo("corp/gated", {"c-Q4_0.gguf": b"q" * 500}, gated=True)
    entry = catalog_entry(hub, "c-Q4_0.gguf", b"q" * 500)
    entry["url"] = hub.resolve_url("corp/gated", "c-Q4_0.gguf")
    hub.set_catalog([entry])
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert g.resolve_model_file("c-Q4_0.gguf", models).read_bytes() == b"q" * 500
