"""LocalDocs: indexing speed (files and chunks per second: extraction, chunking, all-MiniLM-L6-v2
embeddings, SQLite writes, one transaction per document) on the tests' generated corpus, the
no-change update (stat only), and query latency over 10k and 100k chunks of synthetic unit vectors
(384 dimensions, as MiniLM): exact cosine search in numpy, first query (vectors loaded from SQLite)
and warm queries (vectors cached), plus the time to embed the query itself.

    python benchmarks/localdocs.py [--files 300] [--sizes 10000,100000] [--threads 2] [-r 20] [--save]

sqlite-vec (the vector extension the issue suggests) is measured when it loads: this Python's sqlite3
is built without loadable extensions (no enable_load_extension), so here it is reported as unavailable.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "support"))
from machine_info import machine  # noqa: E402


def synthetic_db(path: Path, n_chunks: int, dim: int = 384, seed: int = 0):
    """A LocalDocs database of n_chunks random unit vectors (100 chunks per document)."""
    from gpt4all_core.localdocs import LocalDocs

    db = LocalDocs(path, embedder=object())  # never embeds here
    rng = np.random.default_rng(seed)
    con = db._db
    with db._tx():
        con.execute("INSERT INTO collections (name, created) VALUES ('bench', 0)")
        db._set_meta("embedding_model", "synthetic")
        db._set_meta("embedding_dim", str(dim))
        for d in range(0, n_chunks, 100):
            doc = con.execute("INSERT INTO documents (collection_id, path, title, author, date, mtime_ns, size, hash) "
                              "VALUES (1, ?, '', '', '', 0, 0, '')", (f"/bench/{d}.txt",)).lastrowid
            v = rng.standard_normal((min(100, n_chunks - d), dim)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            for i, row in enumerate(v):
                cid = con.execute("INSERT INTO chunks (document_id, seq, text, page, char_start, char_end, line_from, "
                                  "line_to, n_tokens) VALUES (?, ?, 'synthetic chunk text', -1, 0, 20, 1, 1, 3)",
                                  (doc, i)).lastrowid
                con.execute("INSERT INTO embeddings VALUES (?, ?)", (cid, row.tobytes()))
    return db


def sqlite_vec_available() -> str:
    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        return "unavailable: this Python's sqlite3 cannot load extensions"
    try:
        import sqlite_vec
        con = sqlite3.connect(":memory:")
        con.enable_load_extension(True)
        sqlite_vec.load(con)
        return "loaded"
    except ImportError:
        return "not installed"
    except AttributeError:
        return "unavailable: this Python's sqlite3 cannot load extensions"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-r", "--repeats", type=int, default=20)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/localdocs-<commit>.json")
    args = ap.parse_args()

    from localdocs_corpus import make_corpus

    from gpt4all_core import Embed4All
    from gpt4all_core.localdocs import LocalDocs

    info = machine()
    load = os.getloadavg()
    result: dict = {"machine": info, "load_average": load, "threads": args.threads, "k": args.k,
                    "sqlite_vec": sqlite_vec_available()}
    with tempfile.TemporaryDirectory() as tmp, Embed4All(n_threads=args.threads) as embedder:
        tmp = Path(tmp)
        corpus = make_corpus(tmp / "corpus", n_files=args.files)
        with LocalDocs(tmp / "index.db", embedder) as db:
            stats = db.add("corpus", corpus)
            t0 = time.perf_counter()
            again = db.update("corpus")
            rescan = time.perf_counter() - t0
            t0 = time.perf_counter()
            n_q = 20
            for i in range(n_q):
                embedder.embed(f"question number {i}: where are the database backups copied?", prefix="")
            embed_query = (time.perf_counter() - t0) / n_q
        result["indexing"] = {"files": stats.files, "chunks": stats.chunks, "seconds": stats.seconds,
                              "files_per_s": stats.files / stats.seconds, "chunks_per_s": stats.chunks / stats.seconds,
                              "update_no_change_s": rescan, "update_unchanged": again.unchanged,
                              "query_embedding_ms": embed_query * 1e3}
        print(f"indexing {stats.files} files, {stats.chunks} chunks in {stats.seconds:.2f} s: "
              f"{stats.files / stats.seconds:.1f} files/s, {stats.chunks / stats.seconds:.1f} chunks/s; "
              f"update with nothing changed {rescan * 1e3:.0f} ms; embedding a query {embed_query * 1e3:.1f} ms")
        result["queries"] = []
        rng = np.random.default_rng(1)
        for n in [int(s) for s in args.sizes.split(",")]:
            db = synthetic_db(tmp / f"synthetic-{n}.db", n)
            cids = {1: "bench"}
            q = rng.standard_normal(384).astype(np.float32)
            q /= np.linalg.norm(q)
            t0 = time.perf_counter()
            first = db.search_vector(cids, q, args.k)
            cold = time.perf_counter() - t0
            times = []
            for _ in range(args.repeats):
                q = rng.standard_normal(384).astype(np.float32)
                q /= np.linalg.norm(q)
                t0 = time.perf_counter()
                refs = db.search_vector(cids, q, args.k)
                times.append(time.perf_counter() - t0)
            ids, matrix = db._matrix(1)
            best = np.argsort(-(matrix @ q))[:args.k]
            assert [r.chunk_id for r in refs] == [int(ids[i]) for i in best] and len(first) == args.k
            row = {"chunks": n, "first_query_ms": cold * 1e3, "warm_median_ms": statistics.median(times) * 1e3,
                   "warm_min_ms": min(times) * 1e3, "db_mib": (tmp / f"synthetic-{n}.db").stat().st_size / 2**20}
            result["queries"].append(row)
            print(f"{n} chunks: first query (loads vectors) {row['first_query_ms']:.1f} ms, warm median "
                  f"{row['warm_median_ms']:.2f} ms (min {row['warm_min_ms']:.2f}), database {row['db_mib']:.0f} MiB")
            db.close()
    print(f"sqlite-vec: {result['sqlite_vec']}; load average {load[0]:.2f}")
    if args.save:
        out = HERE / "results" / f"localdocs-{info['commit']}.json"
        out.write_text(json.dumps(result, indent=2))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
