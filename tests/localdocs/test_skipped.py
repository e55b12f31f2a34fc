"""Files LocalDocs cannot or should not read are skipped with a warning and counted: binary
files, text that is not UTF-8, files over the size limit, broken PDFs; unsupported extensions
and hidden files are not looked at."""
from __future__ import annotations

import pytest

from gpt4all_core.localdocs import LocalDocs


def test_skipped_files_are_warned_about_and_counted(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("A perfectly ordinary note about tea.")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    (folder / "latin1.md").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (folder / "huge.txt").write_text("word " * 5000)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    (folder / "image.png").write_bytes(b"\x89PNG\0")  # not a document type: ignored, not counted
    (folder / ".hidden.txt").write_text("hidden")
    (folder / ".git").mkdir()
    (folder / ".git" / "config.txt").write_text("hidden folder")
    (folder / "empty.txt").write_text("")
    with LocalDocs(tmp_path / "db.sqlite", embedder, max_file_bytes=10_000) as db:
        with pytest.warns(UserWarning, match="LocalDocs: skipped") as caught:
            stats = db.add("c", folder)
        reasons = dict((p.rsplit("/", 1)[1], r) for p, r in stats.skipped)
        assert set(reasons) == {"binary.txt", "latin1.md", "huge.txt", "broken.pdf"}
        assert "binary" in reasons["binary.txt"] and "UTF-8" in reasons["latin1.md"]
        assert "too large" in reasons["huge.txt"] and "PDF" in reasons["broken.pdf"]
        assert len([w for w in caught if "LocalDocs: skipped" in str(w.message)]) == 4
        assert stats.files == 6 and stats.added == 2 and stats.chunks == 1  # the empty file: a document, no chunks
        assert db.search("c", "tea", k=3)[0].file == "good.txt"
        with pytest.warns(UserWarning):
            assert len(db.update("c").skipped) == 4  # still counted on the next run
