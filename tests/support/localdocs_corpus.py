"""A generated LocalDocs corpus: a few hundred short files of filler prose in several formats, a
set of planted passages (each answering one question), and one real PDF written with fpdf2 whose
planted passage is on its second page."""
from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = ["The committee", "Our team", "The northern office", "A contractor", "The finance group", "The lab",
            "Marketing", "The night shift", "The board", "Support staff", "The warehouse", "Engineering"]
VERBS = ["reviewed", "postponed", "discussed", "approved", "summarized", "questioned", "drafted", "archived",
         "circulated", "revised", "estimated", "audited"]
OBJECTS = ["the quarterly budget", "the onboarding checklist", "the parking policy", "the holiday rota",
           "the meeting minutes", "the supplier invoices", "the printer contract", "the training schedule",
           "the office move", "the travel guidelines", "the inventory counts", "the newsletter draft"]
TAILS = ["before the deadline.", "without further comment.", "for the second time this month.",
         "after a short debate.", "as agreed last week.", "with minor changes.", "in the afternoon session.",
         "pending a final review."]

# (file name, planted passage, question)
PLANTED = [
    ("recipes/sauce.md", "The secret ingredient in Grandma Rosa's tomato sauce is a pinch of smoked paprika.",
     "What is the secret ingredient in Rosa's tomato sauce?"),
    ("ops/wifi.txt", "The guest wifi password for the Lisbon office is BlueHeron42.",
     "What is the wifi password in Lisbon?"),
    ("notes/telescope.rst", "The observatory telescope has a primary mirror 3.6 metres across, polished in 1987.",
     "How large is the telescope's mirror?"),
    ("pets/parrot.html", "Our parrot Captain Fluff learned to whistle the national anthem at the age of four.",
     "Which song can the parrot whistle?"),
    ("code/retry.py", "# The upload client retries failed requests five times with exponential backoff.",
     "How many times does the upload client retry?"),
    ("travel/visa.txt", "Visitors to the Antarctic research station need a permit from the polar authority.",
     "What do visitors to the Antarctic station need?"),
    ("hr/leave.md", "Employees receive twenty-eight days of paid annual leave, plus public holidays.",
     "How many days of paid leave do employees get?"),
    ("garden/roses.txt", "Prune the climbing roses in late February, just above an outward-facing bud.",
     "When should climbing roses be pruned?"),
    ("history/bridge.rst", "The old stone bridge over the river was built by Roman engineers in 120 AD.",
     "Who built the old stone bridge?"),
    ("music/choir.html", "The choir rehearses every Thursday evening in the crypt of Saint Mary's church.",
     "When does the choir rehearse?"),
    ("it/backup.md", "Database backups are encrypted and copied to the Frankfurt data centre every night at 2 am.",
     "Where are the database backups copied?"),
    ("kitchen/coffee.txt", "The espresso machine must be descaled with citric acid every three weeks.",
     "How often must the espresso machine be descaled?"),
]
PDF_PASSAGE = ("The migration of the arctic tern covers about seventy thousand kilometres each year, "
               "the longest of any bird.")
PDF_QUESTION = "How far does the arctic tern migrate?"
PDF_NAME = "birds/terns.pdf"
EXTENSIONS = ["txt", "md", "rst", "html", "py"]


def filler(rng: random.Random, n_sentences: int) -> str:
    return " ".join(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}"
                    for _ in range(n_sentences))


def wrap(ext: str, title: str, body: str) -> str:
    if ext == "html":
        return (f"<html><head><title>{title}</title><style>p {{color: red}}</style></head><body>"
                f"<h1>{title}</h1><p>{body}</p><script>var hidden = 'script text';</script></body></html>")
    if ext == "md":
        return f"# {title}\n\n{body}\n"
    if ext == "rst":
        return f"{title}\n{'=' * len(title)}\n\n{body}\n"
    if ext == "py":
        return f'"""{title}"""\n\n# {body}\n\ndef noop():\n    return None\n'
    return f"{title}\n\n{body}\n"


def write_pdf(path: Path, rng: random.Random) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Seabirds of the North")
    pdf.set_author("A. Ornithologist")
    pdf.set_font("Helvetica", size=11)
    for page_text in (filler(rng, 6), PDF_PASSAGE + " " + filler(rng, 2), filler(rng, 6)):
        pdf.add_page()
        pdf.multi_cell(0, 6, page_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def make_corpus(root: Path, n_files: int = 300, seed: int = 0, pdf: bool = True) -> Path:
    """n_files filler files (one to two chunks each) in a few folders, the planted ones among
    them (the passage between filler), and the PDF."""
    rng = random.Random(seed)
    for i in range(n_files - len(PLANTED) - int(pdf)):
        ext = EXTENSIONS[i % len(EXTENSIONS)]
        p = root / f"dept{i % 7}" / f"doc{i:04d}.{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(wrap(ext, f"Document {i}", filler(rng, rng.randint(3, 9))), encoding="utf-8")
    for name, passage, _ in PLANTED:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        ext = p.suffix[1:]
        body = f"{filler(rng, 2)} {passage.lstrip('# ')} {filler(rng, 2)}"
        p.write_text(wrap(ext, p.stem.title(), body), encoding="utf-8")
    if pdf:
        write_pdf(root / PDF_NAME, rng)
    return root
