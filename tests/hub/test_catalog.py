"""GPT4All's catalog: live, else the last fetched copy, else the bundled one; the bundled copy is a
well-formed models3.json."""
from __future__ import annotations

import json
import re

import pytest

from gpt4all_core import hub as g
from gpt4all_core.errors import DownloadError
from gpt4all_core.hub import catalog

ENTRY = {"order": "a", "md5sum": "0" * 32, "name": "Tiny", "filename": "tiny.gguf", "filesize": "10",
         "requires": "2.5.0", "ramrequired": "1", "parameters": "1 million", "quant": "q4_0", "type": "LLaMA",
         "description": "a test model", "url": "http://127.0.0.1:9/tiny.gguf", "promptTemplate": "%1",
         "systemPrompt": ""}


def test_live_then_cached_then_bundled(hub, monkeypatch, tmp_path):
    hub.set_catalog([ENTRY])
    models, source = catalog.load_catalog()
    assert models == [ENTRY] and source == f"{hub.url}/models3.json"
    assert g.list_models() == [ENTRY]
    monkeypatch.setenv("GPT4ALL_CATALOG_URL", "http://127.0.0.1:9/models3.json")
    models, source = catalog.load_catalog()
    assert models == [ENTRY] and "cached copy" in source and "cannot connect to 127.0.0.1:9" in source
    (tmp_path / "cache" / "models3.json").unlink()
    models, source = catalog.load_catalog()
    assert models == catalog.bundled_models() and source.startswith("bundled copy")


def test_not_a_catalog(hub):
    hub.set_catalog({"not": "a list"})
    with pytest.raises(DownloadError, match="is not a models3.json catalog"):
        catalog.fetch_catalog()
    assert catalog.load_catalog()[1].startswith("bundled copy; the live catalog failed")
    with pytest.raises(DownloadError, match="HTTP 404"):
        catalog.fetch_catalog(f"{hub.url}/nothing.json")


def test_bundled_copy_is_well_formed():
    models = catalog.bundled_models()
    assert 5 <= len(models) <= 20
    for m in models:
        assert re.fullmatch(r"[0-9a-f]{32}", m["md5sum"]) and m["filesize"].isdigit(), m["filename"]
        assert m["url"].startswith("https://") and m["url"].endswith(".gguf"), m["filename"]
        for key in ("name", "filename", "ramrequired", "parameters", "quant", "type", "description"):
            assert isinstance(m[key], str) and m[key], (m["filename"], key)
    names = {m["filename"] for m in models}
    assert "all-MiniLM-L6-v2.gguf2.f16.gguf" in names  # Embed4All's default model
    json.dumps(models)
    assert catalog.find_model("all-MiniLM-L6-v2.gguf2.f16.gguf", models)["embeddingModel"] is True
    assert catalog.expected_size({"filesize": "45949216"}) == 45949216 and catalog.expected_size({}) is None
