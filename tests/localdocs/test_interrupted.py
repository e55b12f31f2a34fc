"""A killed indexer leaves the database consistent, and the next update finishes the job: the
result is the same database as one clean run. The indexer runs in a child process that SIGKILLs
itself inside a document's transaction (rows written, not committed), after some documents."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
from localdocs_corpus import make_corpus

from gpt4all_core.localdocs import LocalDocs

CHILD = textwrap.dedent("""
    import os, signal, sys
    from gpt4all_core.localdocs import LocalDocs, store
    db_path, folder, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bumps = [0]
    real_bump = store.LocalDocs._bump
    def bump(self, cid):  # called inside a document's transaction, just before COMMIT
        real_bump(self, cid)
        bumps[0] += 1
        if bumps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    store.LocalDocs._bump = bump
    from gpt4all_core import Embed4All
    db = LocalDocs(db_path, Embed4All(n_threads=1))
    db.add("c", folder)
    print("finished without being killed")
""")


def same(a: dict, b: dict) -> None:
    for key in ("collections", "documents", "chunks"):
        assert a[key] == b[key], key
    np.testing.assert_allclose(a["vectors"], b["vectors"], atol=2e-6)


def test_killed_indexing_then_update_equals_a_clean_run(tmp_path, embedder, ld_env):
    folder = make_corpus(tmp_path / "docs", n_files=40, seed=3)
    n_files = sum(1 for p in folder.rglob("*") if p.is_file())
    killed_db = tmp_path / "killed.db"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(killed_db), str(folder), "15"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr

    con = sqlite3.connect(killed_db)  # consistent: whole documents only, nothing dangling
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    n_docs = con.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    assert n_docs == 14  # the 15th document's transaction was rolled back
    assert con.execute("SELECT COUNT(*) FROM chunks k LEFT JOIN embeddings e ON e.chunk_id = k.id "
                       "WHERE e.chunk_id IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM documents d WHERE NOT EXISTS "
                       "(SELECT 1 FROM chunks k WHERE k.document_id = d.id)").fetchone()[0] == 0
    con.close()

    with LocalDocs(killed_db, embedder) as db:
        stats = db.update()
        assert stats.added == n_files - 14 and stats.unchanged == 14 and stats.updated == 0
        resumed = db.dump()
    with LocalDocs(tmp_path / "clean.db", embedder) as db:
        db.add("c", folder)
        clean = db.dump()
    same(resumed, clean)
