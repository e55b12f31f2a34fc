"""GPT4All's model catalog (models3.json): fetched from GPT4All's site, or, offline, the copy
fetched last time, or the small copy bundled with this package.

Each entry is a dict as GPT4All writes it: filename, name, url, md5sum, filesize (a string),
ramrequired, parameters, quant, type, promptTemplate, systemPrompt, description, ...
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx

from gpt4all_core.errors import DownloadError
from gpt4all_core.hub import http

DEFAULT_CATALOG_URL = "https://gpt4all.io/models/models3.json"
BUNDLED_CATALOG = Path(__file__).with_name("models3.json")


def catalog_url() -> str:
    """GPT4ALL_CATALOG_URL, or GPT4All's own catalog."""
    return os.environ.get("GPT4ALL_CATALOG_URL") or DEFAULT_CATALOG_URL


def cache_dir() -> Path:
    return Path(os.environ.get("GPT4ALL_CORE_CACHE") or Path.home() / ".cache" / "gpt4all-core")


def _check(doc: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(doc, list) or not all(isinstance(m, dict) and isinstance(m.get("filename"), str) for m in doc):
        raise DownloadError(f"{source} is not a models3.json catalog (a list of objects with a 'filename')",
                            url=source)
    return doc


def fetch_catalog(url: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The catalog at url (default catalog_url()); DownloadError when it cannot be had."""
    url = url or catalog_url()
    try:
        with http.client(timeout=timeout) as c:
            r = c.get(url)
    except httpx.HTTPError as e:
        raise http.transport_error(e, url) from e
    if r.status_code != 200:
        raise http.status_error(r, url)
    try:
        return _check(r.json(), url)
    except ValueError as e:
        raise DownloadError(f"{url} did not return JSON: {e}", url=url) from e


def bundled_models() -> list[dict[str, Any]]:
    with open(BUNDLED_CATALOG, encoding="utf-8") as f:
        return _check(json.load(f), str(BUNDLED_CATALOG))


def load_catalog(url: str | None = None, timeout: float = 10.0,
                 offline: bool = False) -> tuple[list[dict[str, Any]], str]:
    """(models, where they came from): the live catalog, else the last fetched copy, else the
    bundled one. The source string says which, for the CLI to tell the user."""
    cached = cache_dir() / "models3.json"
    if not offline:
        try:
            models = fetch_catalog(url, timeout)
        except DownloadError as e:
            error = e
        else:
            _save(cached, models)
            return models, url or catalog_url()
    else:
        error = None
    try:
        with open(cached, encoding="utf-8") as f:
            return _check(json.load(f), str(cached)), f"{cached} (cached copy{_why(error)})"
    except (OSError, ValueError, DownloadError):
        pass
    return bundled_models(), f"bundled copy{_why(error)}"


def _why(error: Exception | None) -> str:
    return f"; the live catalog failed: {error}" if error else ""


def _save(path: Path, models: list[dict[str, Any]]) -> None:
    # a cache, so failing to write it is not an error; written whole or not at all
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as f:
            json.dump(models, f)
        os.replace(f.name, path)
    except OSError:
        pass


def list_models(url: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """GPT4All's model catalog in its models3.json format (GPT4All.list_models()), falling back to
    the last fetched or the bundled copy when the catalog cannot be reached."""
    return load_catalog(url, timeout)[0]


def find_model(filename: str, models: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The catalog entry for a file name (exact, as GPT4All matches)."""
    return next((m for m in models if m.get("filename") == filename), None)


def expected_size(entry: dict[str, Any]) -> int | None:
    """The entry's filesize as an int (the catalog writes it as a string), None if absent or bad."""
    try:
        size = int(entry.get("filesize", ""))
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None
