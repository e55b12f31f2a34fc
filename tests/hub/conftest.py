"""The hub tests' world: a fake Hub and catalog on 127.0.0.1, an empty models folder and cache, no
token; nothing reaches the internet."""
from __future__ import annotations

import huggingface_hub.constants
import pytest
from fake_hub import FakeHub


@pytest.fixture(autouse=True)
def offline_world(tmp_path, monkeypatch):
    """Every hub test starts isolated: models and cache folders of its own, no token from the
    environment or from this machine's ~/.cache/huggingface, and HF_ENDPOINT / the catalog URL
    pointing at a closed port (a test that needs a server points them at one)."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setenv("GPT4ALL_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("GPT4ALL_CORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused
    monkeypatch.setenv("GPT4ALL_CATALOG_URL", "http://127.0.0.1:9/models3.json")


@pytest.fixture
def hub(monkeypatch):
    with FakeHub() as h:
        monkeypatch.setenv("HF_ENDPOINT", h.url)
        monkeypatch.setenv("GPT4ALL_CATALOG_URL", f"{h.url}/models3.json")
        yield h


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "models"
    path.mkdir()
    return path
