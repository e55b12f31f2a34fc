"""Servers for the tests: real `gpt4all-core serve` processes on 127.0.0.1 (a free port each)."""
from __future__ import annotations

import json

import pytest
from server_process import KEYS, ServerProcess


@pytest.fixture(scope="session")
def server(smollm2_path, tmp_path_factory):
    """No keys; 2 slots of 512 tokens; generation capped at 48 tokens so that nothing runs long."""
    s = ServerProcess(smollm2_path, "--parallel", "2", "--n-ctx", "512", "--max-tokens", "48",
                      log=tmp_path_factory.mktemp("server") / "server.log")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def keyed_server(smollm2_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("keyed")
    keys = folder / "keys.json"
    keys.write_text(json.dumps(KEYS))
    s = ServerProcess(smollm2_path, "--parallel", "1", "--n-ctx", "256", "--max-tokens", "8", "--api-key-file",
                      str(keys), "--cors-origin", "http://example.test", log=folder / "server.log")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def smollm2_model(smollm2_path):
    from gpt4all_core import models
    with models.load(smollm2_path) as m:
        yield m
