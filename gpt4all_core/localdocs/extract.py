"""Files to text: which files LocalDocs reads, and each one's sections (one per PDF page, one for
any other file) with its title, author and date. Binary, undecodable, unreadable and huge files
raise SkipFile with the reason; the indexer counts them and warns."""
from __future__ import annotations

import datetime as _dt
import html.parser
import re
from dataclasses import dataclass, field
from pathlib import Path

# Text formats read as they are (source code and markup included); .html/.htm lose their tags; .pdf by pypdf.
TEXT_EXTENSIONS = frozenset("""
txt text md markdown rst adoc org tex csv tsv log json jsonl yaml yml toml ini cfg conf xml
py pyi c h cc cpp cxx hpp hh cu m mm java kt kts scala go rs rb php pl pm lua r jl swift cs fs vb dart
js mjs cjs ts tsx jsx vue svelte css scss sass less sql sh bash zsh fish ps1 bat cmd
cmake mk make gradle proto graphql ex exs erl hs ml mli clj el lisp scm nim zig v sv vhd f f90 asm s
""".split())
HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
PDF_EXTENSIONS = frozenset({"pdf"})
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | HTML_EXTENSIONS | PDF_EXTENSIONS
DEFAULT_MAX_FILE_BYTES = 64 << 20


class SkipFile(Exception):
    """This file is not indexed; str() says why."""


@dataclass
class Extracted:
    sections: list[tuple[int, str]]  # (page, text); page -1 outside PDFs, as GPT4All
    title: str = ""
    author: str = ""
    date: str = ""
    extra: dict = field(default_factory=dict)


def supported(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in SUPPORTED_EXTENSIONS


def _decode(data: bytes, path: Path) -> str:
    if b"\0" in data[:8192]:
        raise SkipFile("binary (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SkipFile("not UTF-8 text") from None


class _HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML page (script/style dropped, block elements as line breaks) and its
    <title> and <meta name=author/date> values."""
    BLOCKS = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
              "section", "article", "header", "footer", "blockquote", "hr", "dt", "dd"}
    HIDDEN = {"script", "style", "noscript", "template", "head"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title: list[str] = []
        self.meta: dict[str, str] = {}
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self._hidden += 1
        if tag == "title":
            self._in_title = True
        if tag == "meta":
            a = dict(attrs)
            if a.get("name") and a.get("content"):
                self.meta[a["name"].lower()] = a["content"]
        if tag in self.BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self._hidden:
            self._hidden -= 1
        if tag == "title":
            self._in_title = False
        if tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self.out.append(data)


def html_to_text(source: str) -> tuple[str, str, dict[str, str]]:
    """(text, title, meta) of an HTML page."""
    p = _HTMLText()
    p.feed(source)
    p.close()
    text = "".join(p.out)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" ?\n[\n ]*", "\n", text).strip()
    return text, " ".join("".join(p.title).split()), p.meta


def _pdf_date(value) -> str:
    if isinstance(value, _dt.datetime):
        return value.date().isoformat()
    m = re.match(r"D?:?(\d{4})(\d{2})?(\d{2})?", str(value or ""))
    if not m:
        return ""
    return "-".join(g for g in m.groups() if g)


def _read_pdf(path: Path) -> Extracted:
    import logging

    import pypdf
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable files warn loudly
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:
                raise SkipFile("encrypted PDF") from None
        pages = [(i + 1, (page.extract_text() or "").strip()) for i, page in enumerate(reader.pages)]
        info = reader.metadata or {}
        title = str(info.get("/Title") or "")
        author = str(info.get("/Author") or "")
        date = _pdf_date(info.get("/CreationDate"))
    except SkipFile:
        raise
    except Exception as e:  # pypdf raises many kinds on broken files
        raise SkipFile(f"unreadable PDF ({type(e).__name__}: {e})") from None
    return Extracted([(n, t) for n, t in pages if t], title, author, date)


def _first_heading(text: str, ext: str) -> str:
    if ext in ("md", "markdown"):
        m = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.M)
        return m.group(1) if m else ""
    if ext == "rst":
        m = re.search(r"^(\S[^\n]*)\n([=\-~^#*+])\2{2,}\s*$", text, re.M)
        return m.group(1).strip() if m else ""
    return ""


def extract(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Extracted:
    """The text of a supported file; SkipFile when it cannot or should not be indexed."""
    ext = path.suffix.lower().lstrip(".")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SkipFile(f"too large ({size} bytes, the limit is {max_bytes})")
        if ext in PDF_EXTENSIONS:
            return _read_pdf(path)
        data = path.read_bytes()
    except OSError as e:
        raise SkipFile(f"unreadable ({e.strerror or e})") from None
    text = _decode(data, path)
    if ext in HTML_EXTENSIONS:
        body, title, meta = html_to_text(text)
        return Extracted([(-1, body)] if body else [], title, meta.get("author", ""),
                         meta.get("date", "") or meta.get("dcterms.date", ""))
    return Extracted([(-1, text)] if text.strip() else [], _first_heading(text, ext))
