"""gpt4all-core docs add / update / list / search / remove, on a private database."""
from __future__ import annotations

import json

from gpt4all_core import cli


def test_docs_commands(tmp_path, ld_env, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "boat.txt").write_text("The ferry to the island leaves at 7:45 every morning.\nTickets cost nine euros.")
    (folder / "junk.txt").write_bytes(b"\0\1\2")
    db = ["--db", str(tmp_path / "cli.db")]
    assert cli.main(["docs", *db, "add", "notes", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert "2 files: 1 added" in out and "1 skipped" in out and "skipped " + str(folder / "junk.txt") in err

    assert cli.main(["docs", *db, "list"]) == 0
    assert capsys.readouterr().out.startswith(f"notes: 1 documents, 1 chunks; {folder}")
    assert cli.main(["docs", *db, "search", "notes", "when does the ferry leave?", "--json"]) == 0
    (ref,) = json.loads(capsys.readouterr().out)
    assert ref["file"] == "boat.txt" and ref["from"] == 1 and ref["to"] == 2 and ref["page"] == -1
    assert cli.main(["docs", *db, "search", "notes", "ferry"]) == 0
    assert "boat.txt (lines 1-2)" in capsys.readouterr().out

    (folder / "boat.txt").write_text("The ferry now leaves at 8:15.")
    assert cli.main(["docs", *db, "update"]) == 0
    assert "1 updated" in capsys.readouterr().out
    assert cli.main(["docs", *db, "remove", "notes"]) == 0
    capsys.readouterr()
    assert cli.main(["docs", *db, "search", "notes", "ferry"]) == 2
    assert "no LocalDocs collection named 'notes'" in capsys.readouterr().err
    assert cli.main(["docs", *db, "add", "x", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_default_database_from_the_environment(tmp_path, ld_env, capsys):
    assert cli.main(["docs", "list"]) == 0
    assert "default-localdocs.db" in capsys.readouterr().out
