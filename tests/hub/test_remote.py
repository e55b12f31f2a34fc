"""GGUF headers over HTTP: the same metadata and tensor list as the local file, read with Range
requests from the first bytes only, never the whole file."""
from __future__ import annotations

import pytest
from gguf_craft import tiny
from model_files import random_model

from gpt4all_core import gguf
from gpt4all_core import hub as g
from gpt4all_core.errors import DownloadError, GGUFError
from gpt4all_core.gguf.summary import metadata_json, summarize
from gpt4all_core.hub.remote import RemoteGGUF


def same_header(remote: RemoteGGUF, local: gguf.GGUFFile) -> None:
    assert metadata_json(remote, None) == metadata_json(local, None) and remote.types == local.types
    assert [(t.name, t.type, t.ne, t.offset, t.nbytes) for t in remote.tensors.values()] == \
        [(t.name, t.type, t.ne, t.offset, t.nbytes) for t in local.tensors.values()]
    a, b = summarize(remote), summarize(local)
    assert a.pop("file") != b.pop("file") and a == b


def test_real_model_header_over_range_requests(hub, smollm2_path):
    url = hub.add_file("smollm2.gguf", smollm2_path.read_bytes())
    with RemoteGGUF(url, first_bytes=64 << 10) as r, gguf.open(smollm2_path) as local:
        same_header(r, local)
        assert r.file_size == local.file_size
        # 64 KiB, then 256 KiB, then 1 MiB, 4 MiB: the 49,152-token vocabulary ends near 1.8 MB
        assert r.bytes_fetched < 5 << 20 and r.bytes_fetched < local.file_size / 15
    got = hub.ranges_requested("smollm2.gguf")
    assert got[0] == "bytes=0-65535" and len(got) >= 3 and all(not x.endswith("-") for x in got)


def test_hf_reference_and_server_without_ranges(hub, models):
    path = random_model("llama")
    data = path.read_bytes()
    hub.add_repo("tester/tiny-GGUF", {"tiny-Q8_0.gguf": data})
    with g.open_headers("hf:tester/tiny-GGUF:Q8_0", models)[0] as r, gguf.open(path) as local:
        same_header(r, local)
        assert r.bytes_fetched < len(data)
    assert not any(models.iterdir())  # nothing downloaded
    hub.no_ranges = True  # the header is read from the start of a whole-file answer, which is then dropped
    with RemoteGGUF(hub.add_file("t.gguf", data), first_bytes=4096) as r, gguf.open(path) as local:
        same_header(r, local)


def test_downloaded_models_are_read_locally(hub, models):
    data = tiny().data
    hub.add_repo("tester/tiny-GGUF", {"tiny-Q8_0.gguf": data})
    g.resolve_model_file("hf:tester/tiny-GGUF:Q8_0", models)
    n = len(hub.requests)
    files = g.open_headers("hf:tester/tiny-GGUF:Q8_0", models)
    assert type(files[0]) is gguf.GGUFFile and files[0].path == str(models / "tiny-Q8_0.gguf")
    files[0].close()
    assert len(hub.requests) == n


def test_failures(hub):
    with pytest.raises(GGUFError, match="not a GGUF file"):
        RemoteGGUF(hub.add_file("text.gguf", b"hello world" * 100))
    with pytest.raises(GGUFError, match="cut.gguf: offset 8: .*cannot fit in the 24 bytes left"):
        RemoteGGUF(hub.add_file("cut.gguf", tiny().data[:40]))
    with pytest.raises(DownloadError, match="HTTP 404"):
        RemoteGGUF(f"{hub.url}/files/none.gguf")
    with pytest.raises(DownloadError, match="cannot connect"):
        RemoteGGUF("http://127.0.0.1:9/x.gguf")
