"""Retrieval over the generated corpus (a few hundred files in five formats and one real PDF):
each question's planted passage is among the top 3 chunks (recall@3 reported), with GPT4All's
reference fields filled in."""
from __future__ import annotations

import pytest
from localdocs_corpus import PDF_NAME, PDF_PASSAGE, PDF_QUESTION, PLANTED
from summary_report import REPORT

from gpt4all_core import localdocs


def test_corpus_is_indexed(indexed, corpus):
    db, stats = indexed
    n_files = sum(1 for p in corpus.rglob("*") if p.is_file())
    assert n_files >= 300 and stats.files == n_files and stats.added == n_files and not stats.skipped
    (info,) = db.collections()
    assert info["name"] == "corpus" and info["documents"] == n_files and info["chunks"] == stats.chunks
    assert n_files <= stats.chunks <= 3 * n_files


def test_planted_passages_in_top_3(indexed, corpus):
    db, _ = indexed
    cases = [(str(corpus / name), passage.lstrip("# "), q) for name, passage, q in PLANTED]
    cases.append((str(corpus / PDF_NAME), PDF_PASSAGE, PDF_QUESTION))
    hits, ranks = 0, []
    for path, passage, question in cases:
        refs = db.search("corpus", question, k=3)
        assert len(refs) == 3 and refs[0].score >= refs[1].score >= refs[2].score
        found = [i for i, r in enumerate(refs) if r.path == path and passage in " ".join(r.text.split())]
        ranks.append(found[0] + 1 if found else None)
        hits += bool(found)
    recall = hits / len(cases)
    REPORT.append(f"LocalDocs recall@3: {recall:.2f} ({hits}/{len(cases)} planted passages in {len(cases)} questions, "
                  f"ranks {ranks}), all-MiniLM-L6-v2, corpus of "
                  f"{sum(1 for p in corpus.rglob('*') if p.is_file())} files")
    assert recall >= 0.9, ranks


def test_pdf_reference_fields(indexed, corpus):
    db, _ = indexed
    ref = db.search("corpus", PDF_QUESTION, k=1)[0]
    assert ref.path == str(corpus / PDF_NAME)
    d = ref.to_dict()
    assert set(d) == {"text", "file", "title", "author", "date", "page", "from", "to"}
    assert d["file"] == "terns.pdf" and d["title"] == "Seabirds of the North" and d["author"] == "A. Ornithologist"
    assert d["page"] == 2 and d["from"] == d["to"] == -1 and len(d["date"]) == 10


def test_text_reference_fields(indexed, corpus):
    db, _ = indexed
    name, passage, question = PLANTED[0]  # recipes/sauce.md
    ref = db.search("corpus", question, k=1)[0]
    d = ref.to_dict()
    assert d["file"] == "sauce.md" and d["title"] == "Sauce" and d["page"] == -1
    source = (corpus / name).read_text()
    assert source[ref.char_start:ref.char_end] == ref.text  # the character range points into the file
    assert source.count("\n", 0, ref.char_start) + 1 == d["from"] <= d["to"]


def test_html_tags_and_scripts_are_not_indexed(indexed):
    db, _ = indexed
    for ref in db.search("corpus", "choir rehearsal Thursday", k=3):
        assert "<" not in ref.text and "script text" not in ref.text and "color: red" not in ref.text


def test_several_collections_and_errors(indexed, tmp_path):
    db, _ = indexed
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "moon.txt").write_text("The lunar base stores its water as ice in a crater near the south pole.")
    db.add("extra", extra)
    try:
        refs = db.search(["corpus", "extra"], "Where does the lunar base keep its water?", k=2)
        assert refs[0].collection == "extra" and refs[0].file == "moon.txt"
        assert db.search("extra", "anything", k=5)[0].file == "moon.txt"  # fewer chunks than k
    finally:
        db.remove("extra")
    with pytest.raises(localdocs.LocalDocsError, match="extra"):
        db.search("extra", "anything")
    with pytest.raises(ValueError, match="k must"):
        db.search("corpus", "q", k=0)


def test_retrieve_uses_the_shared_database(indexed):
    db, _ = indexed
    refs = localdocs.retrieve(["corpus"], PDF_QUESTION, k=2, db_path=db.path)
    assert [r.path for r in refs] == [r.path for r in db.search("corpus", PDF_QUESTION, k=2)]
    assert localdocs.retrieve([], "q") == []
