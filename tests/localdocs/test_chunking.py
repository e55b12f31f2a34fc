"""Chunks by tokens of the embedding model with overlap; each chunk's character and line ranges
point back into its text; extraction of HTML, Markdown/reST titles and PDF pages."""
from __future__ import annotations

import random

import pytest
from localdocs_corpus import write_pdf

from gpt4all_core.localdocs import chunk_text, extract
from gpt4all_core.localdocs.chunking import TokenCounter
from gpt4all_core.localdocs.extract import html_to_text


def test_chunks_by_tokens_with_overlap(embedder):
    tok = embedder.model.tokenizer
    count = TokenCounter(lambda w: tok.encode(w, add_special=False))
    text = "\n".join(f"Line {i}: the quick brown fox, number {i * 37}, jumps over the lazy dog's kennel."
                     for i in range(60))
    chunks = chunk_text(text, count, chunk_tokens=64, overlap_tokens=16)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert c.n_tokens == len(tok.encode(c.text, add_special=False)) <= 64  # exact for WordPiece
        assert c.line_from == text.count("\n", 0, c.start) + 1 and c.line_to == text.count("\n", 0, c.end) + 1
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start < a.end  # consecutive chunks overlap
        assert 0 < len(tok.encode(text[b.start:a.end], add_special=False)) <= 16
    assert chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())
    assert chunk_text("", count) == [] and chunk_text("   \n ", count) == []
    with pytest.raises(ValueError, match="overlap"):
        chunk_text(text, count, chunk_tokens=10, overlap_tokens=10)


def test_html_text_and_metadata():
    text, title, meta = html_to_text(
        "<html><head><title> My  Page </title><meta name='author' content='Ann'><style>b{}</style></head>"
        "<body><h1>Head</h1><p>One &amp; two</p><script>evil()</script><ul><li>a</li><li>b</li></ul></body></html>")
    assert title == "My Page" and meta["author"] == "Ann"
    assert text == "Head\nOne & two\na\nb"


def test_extract_titles_and_pdf_pages(tmp_path):
    (tmp_path / "a.md").write_text("intro\n\n# The Title\n\ntext")
    (tmp_path / "b.rst").write_text("Report\n======\n\nbody")
    assert extract(tmp_path / "a.md").title == "The Title" and extract(tmp_path / "b.rst").title == "Report"
    pdf = extract(write_pdf(tmp_path / "t.pdf", random.Random(0)))
    assert [p for p, _ in pdf.sections] == [1, 2, 3] and "arctic tern" in pdf.sections[1][1]
    assert pdf.title == "Seabirds of the North" and pdf.author == "A. Ornithologist" and len(pdf.date) == 10
