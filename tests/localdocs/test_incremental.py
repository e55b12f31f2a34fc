"""Incremental re-indexing: only new and changed files are embedded again; a file whose mtime
changed but whose content did not is not; removed files (and a removed folder's files) are
dropped; the search sees the changes."""
from __future__ import annotations

import os

import pytest

from gpt4all_core.localdocs import LocalDocs


class CountingEmbedder:
    """The shared Embed4All, counting the texts it embeds."""

    def __init__(self, inner):
        self.inner, self.model, self.texts = inner, inner.model, []

    def embed(self, texts, **kw):
        self.texts += [texts] if isinstance(texts, str) else list(texts)
        return self.inner.embed(texts, **kw)


def test_only_changed_files_are_embedded_again(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(8):
        (folder / f"f{i}.txt").write_text(f"File number {i} talks about topic {i * 11} and nothing else.")
    counting = CountingEmbedder(embedder)
    with LocalDocs(tmp_path / "db.sqlite", counting) as db:
        first = db.add("c", folder)
        assert (first.added, first.chunks, len(counting.texts)) == (8, 8, 8)
        before = {r[1]: r for r in db.dump()["documents"]}

        counting.texts.clear()
        again = db.update("c")
        assert (again.unchanged, again.added, again.chunks, counting.texts) == (8, 0, 0, [])

        (folder / "f1.txt").write_text("File one now describes the purple submarine festival in Oslo.")
        os.utime(folder / "f2.txt", ns=(1, 1))  # mtime changed, content not
        (folder / "f3.txt").unlink()
        (folder / "new.md").write_text("# New\n\nA new note about the glass orchestra.")
        stats = db.update("c")
        assert (stats.added, stats.updated, stats.touched, stats.removed, stats.unchanged) == (1, 1, 1, 1, 5)
        assert stats.chunks == 2 and len(counting.texts) == 2
        assert any("purple submarine" in t for t in counting.texts) and any("glass orchestra" in t for t in counting.texts)

        after = {r[1]: r for r in db.dump()["documents"]}
        assert str(folder / "f3.txt") not in after
        assert after[str(folder / "f2.txt")][5] == 1 and after[str(folder / "f2.txt")][7] == before[str(folder / "f2.txt")][7]
        assert db.search("c", "submarine festival", k=1)[0].file == "f1.txt"
        assert db.collections()[0]["documents"] == 8

        counting.texts.clear()
        assert db.update().unchanged == 8 and counting.texts == []


def test_a_removed_folder_drops_its_documents(tmp_path, embedder):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "x.txt").write_text(f"text in folder {folder.name}")
    with LocalDocs(tmp_path / "db.sqlite", embedder) as db:
        db.add("c", a)
        db.add("c", b)
        assert db.collections()[0]["documents"] == 2
        (b / "x.txt").unlink()
        b.rmdir()
        with pytest.warns(UserWarning, match="is gone"):
            stats = db.update("c")
        assert stats.removed == 1 and db.collections()[0]["documents"] == 1
        db.remove_folder("c", a)
        db.remove_folder("c", b)
        assert db.update("c").removed == 1 and db.collections()[0]["documents"] == 0
