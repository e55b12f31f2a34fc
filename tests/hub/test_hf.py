"""hf: references against the fake Hub: file picked by quant, sha256 from the LFS info, split
models fetched together, gated repositories and tokens, offline resolution once downloaded."""
from __future__ import annotations

import hashlib

import huggingface_hub.constants
import numpy as np
import pytest
from fake_hub import TOKEN

from gpt4all_core import hub as g
from gpt4all_core.errors import AuthenticationError, ChecksumError, DownloadError, ModelNotFoundError


def blob(seed: int, n: int = 50_000) -> bytes:
    return np.random.default_rng(seed).bytes(n)


REPO = {
    "README.md": b"# a model\n",
    "model-Q4_K_M.gguf": blob(1),
    "model-Q4_K_M-imat.gguf": blob(2),
    "model-Q8_0.gguf": blob(3),
    "mmproj-model-Q4_K_M.gguf": blob(4),
    "Q6_K/model-Q6_K-00001-of-00003.gguf": blob(5),
    "Q6_K/model-Q6_K-00002-of-00003.gguf": blob(6),
    "Q6_K/model-Q6_K-00003-of-00003.gguf": blob(7),
}


@pytest.fixture
def repo(hub):
    hub.add_repo("tester/model-GGUF", REPO, revisions=("main", "dev"))
    return hub


def test_quant_picks_the_file_and_sha256_is_checked(repo, models):
    path = g.resolve_model_file("hf:tester/model-GGUF:q4_k_m", models)
    assert path == models / "model-Q4_K_M.gguf" and path.read_bytes() == REPO["model-Q4_K_M.gguf"]
    assert g.resolve_model_file("hf:tester/model-GGUF:Q8_0", models).read_bytes() == REPO["model-Q8_0.gguf"]
    assert g.resolve_model_file("hf:tester/model-GGUF", models) == path  # Q4_K_M by default
    api = [r["path"] for r in repo.requests if r["path"].startswith("/api/")]
    assert api and all(p == "/api/models/tester/model-GGUF" for p in api)
    # the download went through /resolve/ and its redirect to the blob, as on the Hub
    assert any("/resolve/main/model-Q4_K_M.gguf" in r["path"] for r in repo.requests)
    assert any(r["path"].startswith("/_blob/") for r in repo.requests)


def test_resolved_offline_once_downloaded(repo, models, monkeypatch):
    path = g.resolve_model_file("hf:tester/model-GGUF:Q4_K_M", models)
    split = g.resolve_model_file("hf:tester/model-GGUF:Q6_K", models)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # no Hub any more
    n = len(repo.requests)
    assert g.resolve_model_file("hf:tester/model-GGUF:Q4_K_M", models) == path
    assert g.resolve_model_file("hf:tester/model-GGUF/model-Q4_K_M.gguf", models) == path
    assert g.resolve_model_file("hf:tester/model-GGUF", models) == path
    assert g.resolve_model_file("hf:tester/model-gguf:Q6_K", models) == split
    assert len(repo.requests) == n
    with pytest.raises(DownloadError, match="cannot connect to 127.0.0.1:9"):
        g.resolve_model_file("hf:tester/model-GGUF:Q8_0", models)  # not downloaded: needs the Hub
    with pytest.raises(ModelNotFoundError, match="allow_download=False"):
        g.resolve_model_file("hf:tester/model-GGUF:Q8_0", models, allow_download=False)
    (models / "model-Q4_K_M.gguf").unlink()  # the record alone is not the file
    with pytest.raises(DownloadError):
        g.resolve_model_file("hf:tester/model-GGUF:Q4_K_M", models)


def test_split_model_fetched_together(repo, models):
    first = g.resolve_model_file("hf:tester/model-GGUF/Q6_K/model-Q6_K-00002-of-00003.gguf", models)
    assert first == models / "model-Q6_K-00001-of-00003.gguf"
    for i in (1, 2, 3):
        name = f"model-Q6_K-0000{i}-of-00003.gguf"
        assert (models / name).read_bytes() == REPO[f"Q6_K/{name}"]


def test_branch(repo, models):
    path = g.resolve_model_file("hf:tester/model-GGUF/model-Q8_0.gguf#dev", models)
    assert path.read_bytes() == REPO["model-Q8_0.gguf"]
    assert any(r["path"] == "/api/models/tester/model-GGUF/revision/dev" for r in repo.requests)
    assert any("/resolve/dev/model-Q8_0.gguf" in r["path"] for r in repo.requests)
    with pytest.raises(ModelNotFoundError, match="no branch, tag or commit 'nope'"):
        g.resolve_model_file("hf:tester/model-GGUF:Q8_0#nope", models)


def test_missing_things_are_named(repo, models):
    with pytest.raises(ModelNotFoundError, match="no GGUF file for quant 'Q2_K'.*model-Q4_K_M.gguf.*model-Q8_0.gguf"):
        g.resolve_model_file("hf:tester/model-GGUF:Q2_K", models)
    with pytest.raises(ModelNotFoundError, match="has no file 'nope.gguf'"):
        g.resolve_model_file("hf:tester/model-GGUF/nope.gguf", models)
    with pytest.raises(ModelNotFoundError, match="tester/absent on http://127.0.0.1:\\d+: no such repository"):
        g.resolve_model_file("hf:tester/absent:Q4_0", models)
    assert not any(p.suffix == ".part" for p in models.iterdir())


def test_hub_url_uses_the_lfs_sha256(repo, models):
    repo.blobs[hashlib.sha256(REPO["model-Q8_0.gguf"]).hexdigest()] = blob(99)  # the CDN serves other bytes
    with pytest.raises(ChecksumError, match="sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}"):
        g.resolve_model_file(repo.resolve_url("tester/model-GGUF", "model-Q8_0.gguf"), models)
    assert list(models.glob("model-Q8_0*")) == []


def test_gated_repository(hub, models, monkeypatch, tmp_path):
    hub.add_repo("corp/gated-GGUF", {"g-Q4_0.gguf": blob(8)}, gated=True)
    with pytest.raises(AuthenticationError, match=r"HTTP 401 .*gated.*set HF_TOKEN or log in.*restricted"):
        g.resolve_model_file("hf:corp/gated-GGUF:Q4_0", models)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(AuthenticationError, match=r"HTTP 403 .*check that HF_TOKEN"):
        g.resolve_model_file("hf:corp/gated-GGUF:Q4_0", models)
    assert not list(models.glob("g-Q4_0*"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert g.resolve_model_file("hf:corp/gated-GGUF:Q4_0", models).read_bytes() == blob(8)
    assert any(r["auth"] == f"Bearer {TOKEN}" and "/resolve/" in r["path"] for r in hub.requests)


def test_token_file(hub, models, monkeypatch, tmp_path):
    hub.add_repo("corp/gated-GGUF", {"g-Q4_0.gguf": blob(8)}, gated=True)
    token_file = tmp_path / "hf-home" / "token"  # where `hf auth login` saves it (conftest points there)
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")
    assert huggingface_hub.constants.HF_TOKEN_PATH == str(token_file)
    assert g.resolve_model_file("hf:corp/gated-GGUF:Q4_0", models).read_bytes() == blob(8)
