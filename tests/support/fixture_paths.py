"""Where ./dev.sh test puts the real model files and fixtures (tools/fetch_models.py test)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("GPT4ALL_CORE_CACHE", Path.home() / ".cache" / "gpt4all-core"))
MODEL_DIR = Path(os.environ.get("GPT4ALL_MODEL_DIR", Path.home() / ".cache" / "gpt4all"))
TEST_DATA = Path(os.environ.get("GPT4ALL_CORE_TEST_DATA", CACHE / "testdata"))


def need(path: Path) -> Path:
    """``path``, or a test failure (never a skip) that says how to get it."""
    if not path.exists():
        pytest.fail(f"{path} is missing: run ./dev.sh test, which fetches the fixtures (tools/fetch_models.py test)")
    return path
