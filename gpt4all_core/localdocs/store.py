"""The LocalDocs database: one SQLite file holding named collections of folders, their documents,
the documents' chunks and the chunks' embeddings, and exact cosine search over them in numpy.

Indexing is incremental and safe to interrupt: each document (its row, chunks and embeddings) is
written in one transaction after it has been embedded, so a killed indexer leaves whole documents
or none, and the next update picks up where it stopped. A file is re-read only when its size or
mtime changed, and re-embedded only when its SHA-256 changed as well; files gone from disk (or
whose folder is gone) are dropped.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpt4all_core.errors import LocalDocsError
from gpt4all_core.localdocs.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS, TokenCounter, chunk_text
from gpt4all_core.localdocs.extract import DEFAULT_MAX_FILE_BYTES, SkipFile, extract, supported

DB_ENV = "GPT4ALL_CORE_LOCALDOCS_DB"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL,
    updated REAL, version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS folders (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    path TEXT NOT NULL, PRIMARY KEY (collection_id, path));
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    path TEXT NOT NULL, title TEXT NOT NULL, author TEXT NOT NULL, date TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, hash TEXT NOT NULL,
    UNIQUE (collection_id, path));
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, text TEXT NOT NULL, page INTEGER NOT NULL,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL,
    line_from INTEGER NOT NULL, line_to INTEGER NOT NULL, n_tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE TABLE IF NOT EXISTS embeddings (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vector BLOB NOT NULL);
"""


def default_db_path() -> Path:
    """$GPT4ALL_CORE_LOCALDOCS_DB, else localdocs.db in the user data dir (platformdirs), else in
    ~/.local/share/gpt4all-core."""
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV])
    try:
        import platformdirs
        base = Path(platformdirs.user_data_dir("gpt4all-core", appauthor=False))
    except ImportError:
        base = Path.home() / ".local" / "share" / "gpt4all-core"
    return base / "localdocs.db"


@dataclass
class Reference:
    """One retrieved chunk. to_dict() gives the entry of GPT4All's `references` list (server
    `choices[0].references`): text, file (the file name), title, author, date, page (1-based in
    PDFs, -1 elsewhere), from/to (the chunk's first and last line, -1 in PDFs), as GPT4All's
    ResultInfo."""
    text: str
    file: str
    path: str
    title: str
    author: str
    date: str
    page: int
    from_: int
    to: int
    collection: str
    score: float
    char_start: int = 0
    char_end: int = 0
    chunk_id: int = 0

    def to_dict(self) -> dict:
        return {"text": self.text, "file": self.file, "title": self.title, "author": self.author, "date": self.date,
                "page": self.page, "from": self.from_, "to": self.to}


@dataclass
class IndexStats:
    files: int = 0  # supported files found in the folders
    added: int = 0
    updated: int = 0  # content changed: re-chunked and re-embedded
    touched: int = 0  # mtime or size changed, same content: nothing re-embedded
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0  # chunks embedded in this run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.files} files: {self.added} added, {self.updated} updated, {self.unchanged + self.touched} "
                f"unchanged, {self.removed} removed, {len(self.skipped)} skipped; {self.chunks} chunks embedded "
                f"in {self.seconds:.1f} s")


ProgressCallback = Callable[[int, int, str], None]  # (done, total, path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalDocs:
    """A LocalDocs database. embedder: an Embed4All (default: Embed4All(), made when first needed).
    Thread-safe (one lock around the connection), so a server can share one."""

    def __init__(self, path: str | os.PathLike | None = None, embedder=None, *,
                 chunk_tokens: int = DEFAULT_CHUNK_TOKENS, overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES):
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._embedder = embedder
        self._own_embedder = False
        self.chunk_tokens, self.overlap_tokens, self.max_file_bytes = chunk_tokens, overlap_tokens, max_file_bytes
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA busy_timeout = 10000")
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                self._db.execute(stmt)
        version = self._meta("schema_version")
        if version is None:
            self._set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) != SCHEMA_VERSION:
            raise LocalDocsError(f"{self.path}: LocalDocs schema {version}, this version reads {SCHEMA_VERSION}")
        self._matrices: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
        self._counter: TokenCounter | None = None

    # ---- plumbing ----

    class _Tx:
        def __init__(self, db):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type, *rest):
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> "_Tx":
        return self._Tx(self._db)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._own_embedder and self._embedder is not None:
                self._embedder.close()
            self._embedder = None

    def __enter__(self) -> "LocalDocs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def embedder(self):
        if self._embedder is None:
            from gpt4all_core.api import Embed4All
            self._embedder = Embed4All()
            self._own_embedder = True
        return self._embedder

    def _check_model(self) -> None:
        """The embedding model the database was built with must be the one in use."""
        model = self.embedder.model
        name, dim = model.name, str(model.n_embd)
        stored = self._meta("embedding_model"), self._meta("embedding_dim")
        if stored == (None, None):
            with self._tx():
                self._set_meta("embedding_model", name)
                self._set_meta("embedding_dim", dim)
        elif stored != (name, dim):
            raise LocalDocsError(f"{self.path} was indexed with {stored[0]} ({stored[1]} dimensions), not {name}: "
                                 "use that model, or another database")

    def _prefixes(self) -> tuple[str, str]:
        from gpt4all_core.api import EMBEDDING_MODEL_SPECS
        spec = EMBEDDING_MODEL_SPECS.get(self.embedder.model.name)
        return (spec.doc_prefix, spec.query_prefix) if spec else ("", "")

    def _embed(self, texts: list[str], prefix: str) -> np.ndarray:
        return np.asarray(self.embedder.embed(texts, prefix=prefix, long_text_mode="truncate"), dtype=np.float32)

    def _collection_id(self, name: str) -> int:
        row = self._db.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise LocalDocsError(f"no LocalDocs collection named {name!r} (in {self.path})")
        return row[0]

    # ---- collections ----

    def add(self, name: str, folder: str | os.PathLike, *, update: bool = True,
            progress: ProgressCallback | None = None) -> IndexStats | None:
        """Adds folder to collection name (made if new), then indexes the collection unless update=False."""
        if not isinstance(name, str) or not name.strip():
            raise LocalDocsError(f"a collection name must be a non-empty string, not {name!r}")
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise LocalDocsError(f"{folder}: not a folder")
        with self._lock, self._tx():
            self._db.execute("INSERT OR IGNORE INTO collections (name, created) VALUES (?, ?)", (name, time.time()))
            cid = self._collection_id(name)
            self._db.execute("INSERT OR IGNORE INTO folders VALUES (?, ?)", (cid, str(folder)))
        return self.update(name, progress=progress) if update else None

    def remove(self, name: str) -> None:
        """Drops a collection with its documents, chunks and embeddings."""
        with self._lock, self._tx():
            cid = self._collection_id(name)
            self._db.execute("DELETE FROM collections WHERE id = ?", (cid,))
        self._matrices.pop(cid, None)

    def remove_folder(self, name: str, folder: str | os.PathLike) -> None:
        """Takes a folder out of a collection; its documents go at the next update."""
        with self._lock, self._tx():
            cid = self._collection_id(name)
            self._db.execute("DELETE FROM folders WHERE collection_id = ? AND path = ?",
                             (cid, str(Path(folder).expanduser().resolve())))

    def collections(self) -> list[dict]:
        """Each collection: name, folders, documents, chunks, updated (seconds since the epoch or None)."""
        with self._lock:
            rows = self._db.execute("""
                SELECT c.id, c.name, c.updated,
                       (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id),
                       (SELECT COUNT(*) FROM chunks k JOIN documents d ON k.document_id = d.id
                        WHERE d.collection_id = c.id)
                FROM collections c ORDER BY c.name""").fetchall()
            out = []
            for cid, name, updated, n_docs, n_chunks in rows:
                folders = [r[0] for r in self._db.execute(
                    "SELECT path FROM folders WHERE collection_id = ? ORDER BY path", (cid,))]
                out.append({"name": name, "folders": folders, "documents": n_docs, "chunks": n_chunks,
                            "updated": updated})
            return out

    # ---- indexing ----

    def _scan(self, folders: Iterable[str], stats: IndexStats) -> list[Path]:
        found: set[Path] = set()
        for folder in folders:
            if not Path(folder).is_dir():
                warnings.warn(f"LocalDocs: folder {folder} is gone; its documents are dropped", stacklevel=3)
                continue
            for root, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in files:
                    p = Path(root) / f
                    if not f.startswith(".") and supported(p) and p.is_file():
                        found.add(p)
        return sorted(found)

    def update(self, name: str | None = None, *, progress: ProgressCallback | None = None) -> IndexStats:
        """Brings one collection (or every one) up to date with its folders: new and changed files
        indexed, removed ones dropped. Returns the counts; skipped files are warned about."""
        t0 = time.perf_counter()
        stats = IndexStats()
        with self._lock:
            names = [name] if name is not None else [c["name"] for c in self.collections()]
            for n in names:
                self._update_one(n, stats, progress)
        stats.seconds = time.perf_counter() - t0
        return stats

    def _update_one(self, name: str, stats: IndexStats, progress: ProgressCallback | None) -> None:
        cid = self._collection_id(name)
        folders = [r[0] for r in self._db.execute("SELECT path FROM folders WHERE collection_id = ?", (cid,))]
        files = self._scan(folders, stats)
        stats.files += len(files)
        known = {path: (doc_id, mtime, size, digest) for doc_id, path, mtime, size, digest in self._db.execute(
            "SELECT id, path, mtime_ns, size, hash FROM documents WHERE collection_id = ?", (cid,))}
        on_disk = {str(p) for p in files}
        gone = [known[p][0] for p in known if p not in on_disk]
        if gone:
            with self._tx():
                self._db.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in gone])
                self._bump(cid)
            stats.removed += len(gone)
        for done, p in enumerate(files):
            if progress is not None:
                progress(done, len(files), str(p))
            try:
                self._index_file(cid, p, known.get(str(p)), stats)
            except SkipFile as e:
                stats.skipped.append((str(p), str(e)))
                warnings.warn(f"LocalDocs: skipped {p}: {e}", stacklevel=3)
        if progress is not None:
            progress(len(files), len(files), "")
        with self._tx():
            self._db.execute("UPDATE collections SET updated = ? WHERE id = ?", (time.time(), cid))

    def _bump(self, cid: int) -> None:
        self._db.execute("UPDATE collections SET version = version + 1 WHERE id = ?", (cid,))

    def _index_file(self, cid: int, path: Path, known: tuple | None, stats: IndexStats) -> None:
        try:
            st = path.stat()
        except OSError as e:
            raise SkipFile(f"unreadable ({e.strerror or e})") from None
        if known is not None and (known[1], known[2]) == (st.st_mtime_ns, st.st_size):
            stats.unchanged += 1
            return
        if st.st_size > self.max_file_bytes:
            raise SkipFile(f"too large ({st.st_size} bytes, the limit is {self.max_file_bytes})")
        try:
            digest = _sha256(path.read_bytes())
        except OSError as e:
            raise SkipFile(f"unreadable ({e.strerror or e})") from None
        if known is not None and known[3] == digest:
            with self._tx():
                self._db.execute("UPDATE documents SET mtime_ns = ?, size = ? WHERE id = ?",
                                 (st.st_mtime_ns, st.st_size, known[0]))
            stats.touched += 1
            return
        doc = extract(path, self.max_file_bytes)
        self._check_model()
        if self._counter is None:
            tok = self.embedder.model.tokenizer
            self._counter = TokenCounter(lambda w: tok.encode(w, add_special=False))
        rows = []
        for page, text in doc.sections:
            for c in chunk_text(text, self._counter, self.chunk_tokens, self.overlap_tokens):
                rows.append((c.text, page, c.start, c.end, -1 if page > 0 else c.line_from,
                             -1 if page > 0 else c.line_to, c.n_tokens))
        vectors = self._embed([r[0] for r in rows], self._prefixes()[0]) if rows else np.zeros((0, 0), np.float32)
        date = doc.date or time.strftime("%Y-%m-%d", time.localtime(st.st_mtime))
        with self._tx():
            if known is not None:
                self._db.execute("DELETE FROM documents WHERE id = ?", (known[0],))
            doc_id = self._db.execute(
                "INSERT INTO documents (collection_id, path, title, author, date, mtime_ns, size, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, str(path), doc.title, doc.author, date, st.st_mtime_ns, st.st_size, digest)).lastrowid
            for seq, (row, vec) in enumerate(zip(rows, vectors)):
                chunk_id = self._db.execute(
                    "INSERT INTO chunks (document_id, seq, text, page, char_start, char_end, line_from, line_to, "
                    "n_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (doc_id, seq, *row)).lastrowid
                self._db.execute("INSERT INTO embeddings VALUES (?, ?)", (chunk_id, vec.tobytes()))
            self._bump(cid)
        stats.chunks += len(rows)
        if known is None:
            stats.added += 1
        else:
            stats.updated += 1

    # ---- retrieval ----

    def _matrix(self, cid: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, float32 [n, dim] unit vectors) of a collection, cached until it changes."""
        version = self._db.execute("SELECT version FROM collections WHERE id = ?", (cid,)).fetchone()[0]
        cached = self._matrices.get(cid)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        rows = self._db.execute("""SELECT e.chunk_id, e.vector FROM embeddings e JOIN chunks k ON k.id = e.chunk_id
                                   JOIN documents d ON d.id = k.document_id WHERE d.collection_id = ?
                                   ORDER BY e.chunk_id""", (cid,)).fetchall()
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        if rows:
            matrix = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1)
        else:
            matrix = np.zeros((0, 1), np.float32)
        self._matrices[cid] = (version, ids, matrix)
        return ids, matrix

    def search(self, collections: str | Sequence[str], query: str, k: int = 3) -> list[Reference]:
        """The k chunks of the named collections most similar to query (cosine of the embeddings,
        exact), best first, as References with their scores."""
        if isinstance(collections, str):
            collections = [collections]
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        with self._lock:
            cids = {self._collection_id(n): n for n in collections}
            if self._meta("embedding_model") is None:
                return []  # nothing indexed yet
            self._check_model()
            q = self._embed([query], self._prefixes()[1])[0]
            return self.search_vector(cids, q, k)

    def search_vector(self, cids: dict[int, str], q: np.ndarray, k: int) -> list[Reference]:
        """search() with the query's embedding given; cids: collection id -> name."""
        hits: list[tuple[float, int, str]] = []
        for cid, name in cids.items():
            ids, matrix = self._matrix(cid)
            if not len(ids):
                continue
            scores = matrix @ q
            top = np.argpartition(-scores, k - 1)[:k] if len(scores) > k else np.arange(len(scores))
            hits += [(float(scores[i]), int(ids[i]), name) for i in top]
        hits.sort(key=lambda h: (-h[0], h[1]))
        return [self._reference(chunk_id, score, name) for score, chunk_id, name in hits[:k]]

    def _reference(self, chunk_id: int, score: float, collection: str) -> Reference:
        text, page, start, end, lf, lt, path, title, author, date = self._db.execute(
            """SELECT k.text, k.page, k.char_start, k.char_end, k.line_from, k.line_to,
                      d.path, d.title, d.author, d.date
               FROM chunks k JOIN documents d ON d.id = k.document_id WHERE k.id = ?""", (chunk_id,)).fetchone()
        return Reference(text=text, file=Path(path).name, path=path, title=title, author=author, date=date, page=page,
                         from_=lf, to=lt, collection=collection, score=score, char_start=start, char_end=end,
                         chunk_id=chunk_id)

    def dump(self) -> dict:
        """The database's content without row ids or times (for comparing two databases)."""
        with self._lock:
            out = {"collections": self._db.execute(
                "SELECT c.name, f.path FROM collections c LEFT JOIN folders f ON f.collection_id = c.id "
                "ORDER BY c.name, f.path").fetchall()}
            out["documents"] = self._db.execute(
                "SELECT c.name, d.path, d.title, d.author, d.date, d.mtime_ns, d.size, d.hash FROM documents d "
                "JOIN collections c ON c.id = d.collection_id ORDER BY c.name, d.path").fetchall()
            rows = self._db.execute(
                "SELECT c.name, d.path, k.seq, k.text, k.page, k.char_start, k.char_end, k.line_from, k.line_to, "
                "k.n_tokens, e.vector FROM chunks k JOIN documents d ON d.id = k.document_id "
                "JOIN collections c ON c.id = d.collection_id LEFT JOIN embeddings e ON e.chunk_id = k.id "
                "ORDER BY c.name, d.path, k.seq").fetchall()
            out["chunks"] = [r[:-1] for r in rows]
            out["vectors"] = np.stack([np.frombuffer(r[-1], np.float32) for r in rows]) if rows else np.zeros((0,))
            return out
