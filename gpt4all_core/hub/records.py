"""What we know about each downloaded model file, kept beside it in <models folder>/.hub/<file>.json.

A record names the file's source (URL; for the Hub: repository, revision, commit, path, quant),
its size, mtime and checksum as verified at download time. It lets an hf: reference resolve
offline (which local file is hf:user/repo:Q4_K_M?) and lets `pull` tell a current file from a
changed one without hashing gigabytes again.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from gpt4all_core.hub.refs import DEFAULT_QUANTS, ModelRef, quant_matches, split_parts

RECORD_DIR = ".hub"


def record_path(dest: Path) -> Path:
    return dest.parent / RECORD_DIR / (dest.name + ".json")


def write_json_atomic(path: Path, doc: Any) -> None:
    """Writes JSON under a temporary name and renames it, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_record(dest: Path) -> dict[str, Any] | None:
    """The record of dest if it still describes the file there (same size and mtime)."""
    rec = read_json(record_path(dest))
    try:
        st = dest.stat()
    except OSError:
        return None
    if not isinstance(rec, dict) or rec.get("size") != st.st_size or rec.get("mtime_ns") != st.st_mtime_ns:
        return None
    return rec


def write_record(dest: Path, info: dict[str, Any]) -> None:
    st = dest.stat()
    write_json_atomic(record_path(dest), {**info, "file": dest.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns})


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def find_hf_download(ref: ModelRef, directory: Path) -> Path | None:
    """The local file an hf: reference names, if a download recorded it and every part of it is
    there: resolved without the network. hf:user/repo alone picks as the Hub listing would
    (DEFAULT_QUANTS in turn), else the file such a reference downloaded before."""
    folder = directory / RECORD_DIR
    if not folder.is_dir():
        return None
    records = []
    for path in sorted(folder.glob("*.json")):
        rec = read_json(path)
        if (isinstance(rec, dict) and str(rec.get("repo", "")).lower() == ref.repo.lower()
                and rec.get("revision", "main") == ref.revision and isinstance(rec.get("file"), str)):
            records.append(rec)
    if ref.file is not None:
        tests = [lambda rec: rec.get("path_in_repo") == ref.file]
    elif ref.quant is not None:
        tests = [lambda rec: quant_matches(str(rec.get("path_in_repo", "")), ref.quant)]
    else:
        tests = [lambda rec, q=q: quant_matches(str(rec.get("path_in_repo", "")), q) for q in DEFAULT_QUANTS]
        tests.append(lambda rec: bool(rec.get("default_pick")))
    for test in tests:
        found = [d for rec in records if test(rec) and (d := _complete(directory, rec["file"])) is not None]
        if found:
            # the shortest name: Q4_K_M picks 'x-Q4_K_M.gguf' over 'x-Q4_K_M-imat.gguf', as the Hub listing does
            return min(found, key=lambda p: (len(p.name), p.name))
    return None


def _complete(directory: Path, name: str) -> Path | None:
    """The (first part's) path if the file, or every part of a split one, is there as recorded."""
    parts = split_parts(name) or [name]
    if all(read_record(directory / p) is not None for p in parts):
        return directory / parts[0]
    return None
