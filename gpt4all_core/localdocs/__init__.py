"""LocalDocs: named collections of folders indexed into one SQLite database (documents, token
chunks with their page and character/line ranges, embeddings of the default embedding model) and
retrieval of the chunks nearest a question, as GPT4All's LocalDocs.

    from gpt4all_core import localdocs
    with localdocs.LocalDocs() as db:              # ~/.local/share/gpt4all-core/localdocs.db by default
        db.add("notes", "~/notes")                  # indexes the folder (incrementally on later updates)
        for ref in db.search("notes", "when is the launch?", k=3):
            print(ref.score, ref.file, ref.text)
    refs = localdocs.retrieve(["notes"], "when is the launch?", k=3)   # a shared database (servers)
    [r.to_dict() for r in refs]                     # GPT4All's `references` entries
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from gpt4all_core.localdocs.chunking import Chunk, chunk_text
from gpt4all_core.localdocs.extract import SUPPORTED_EXTENSIONS, SkipFile, extract
from gpt4all_core.errors import LocalDocsError
from gpt4all_core.localdocs.store import IndexStats, LocalDocs, Reference, default_db_path

DEFAULT_K = 3  # GPT4All's default "LocalDocs retrieval size"
_shared: dict[Path, LocalDocs] = {}
_shared_lock = threading.Lock()


def shared(db_path: str | os.PathLike | None = None) -> LocalDocs:
    """One LocalDocs per database path for the whole process (made on first use, default embedder)."""
    path = Path(db_path) if db_path is not None else default_db_path()
    with _shared_lock:
        db = _shared.get(path)
        if db is None:
            db = _shared[path] = LocalDocs(path)
        return db


def retrieve(collections: Sequence[str] | str, query: str, k: int = DEFAULT_K, *,
             db_path: str | os.PathLike | None = None) -> list[Reference]:
    """The k chunks of the named collections nearest query, best first (for the server's
    `localdocs` request field: `[r.to_dict() for r in refs]` is GPT4All's `references`)."""
    if isinstance(collections, str):
        collections = [collections]
    if not collections:
        return []
    return shared(db_path).search(list(collections), query, k)


def format_context(refs: Sequence[Reference]) -> str:
    """The retrieved snippets as GPT4All (3.x, chatllm.cpp) puts them before the user's message:
    '### Context:' and, per snippet, 'Collection: ...\\nPath: ...\\nExcerpt: ...', then a blank line."""
    if not refs:
        return ""
    parts = [f"Collection: {r.collection}\nPath: {r.path}\nExcerpt: {r.text}" for r in refs]
    return "### Context:\n" + "\n\n".join(parts) + "\n\n"


__all__ = ["DEFAULT_K", "Chunk", "IndexStats", "LocalDocs", "LocalDocsError", "Reference", "SUPPORTED_EXTENSIONS", "SkipFile",
           "chunk_text", "default_db_path", "extract", "format_context", "retrieve", "shared"]
