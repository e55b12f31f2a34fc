"""Model references: each form parses to what it names; malformed ones say what is wrong."""
from __future__ import annotations

from pathlib import Path

import pytest

from gpt4all_core.hub.refs import parse_reference, quant_matches, split_parts


def test_forms(tmp_path):
    r = parse_reference("hf:bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")
    assert (r.kind, r.repo, r.quant, r.file, r.revision) == ("hf", "bartowski/Llama-3.2-1B-Instruct-GGUF", "Q4_K_M",
                                                             None, "main")
    r = parse_reference("hf:u/r/sub/dir/m-00001-of-00002.gguf#v1.0")
    assert (r.kind, r.repo, r.quant, r.file, r.revision) == ("hf", "u/r", None, "sub/dir/m-00001-of-00002.gguf", "v1.0")
    r = parse_reference("hf:u/r")
    assert (r.repo, r.quant, r.file) == ("u/r", None, None)
    r = parse_reference("Llama-3.2-1B-Instruct-Q4_0")
    assert (r.kind, r.name) == ("name", "Llama-3.2-1B-Instruct-Q4_0.gguf")
    assert parse_reference("orca.bin").name == "orca.bin"
    r = parse_reference("https://example.com/a/b%20c.gguf?x=1")
    assert (r.kind, r.name, r.url) == ("url", "b c.gguf", "https://example.com/a/b%20c.gguf?x=1")
    f = tmp_path / "m.gguf"
    f.write_bytes(b"")
    assert parse_reference(str(f)).kind == "path" and parse_reference(f).path == f
    assert parse_reference("./missing.gguf").kind == "path"  # looks like a path: never a catalog name
    assert parse_reference("~/x.gguf").path == Path.home() / "x.gguf"


def test_hub_urls_are_read_as_hf_references():
    r = parse_reference("https://huggingface.co/u/r/resolve/main/d/x.gguf", "https://huggingface.co")
    assert (r.kind, r.repo, r.file, r.revision) == ("hf", "u/r", "d/x.gguf", "main")
    assert parse_reference("https://huggingface.co/u/r/resolve/main/x.gguf", "http://127.0.0.1:1").kind == "url"


@pytest.mark.parametrize("text, message", [
    ("hf:justone", "expected hf:<user>/<repo>"),
    ("hf:u/r:", "nothing after ':'"),
    ("hf:u/r#", "nothing after '#'"),
    ("hf:u/r a", "repository name 'r a'"),
    ("hf:u/r/../x.gguf", "not a clean path"),
    ("https://example.com/", "does not end in a file name"),
    ("", "non-empty"),
])
def test_malformed(text, message):
    with pytest.raises(ValueError, match=message):
        parse_reference(text)


def test_split_parts_and_quants():
    assert split_parts("m-00002-of-00003.gguf") == ["m-00001-of-00003.gguf", "m-00002-of-00003.gguf",
                                                    "m-00003-of-00003.gguf"]
    assert split_parts("m.gguf") is None
    with pytest.raises(ValueError, match="part 4 of 3"):
        split_parts("m-00004-of-00003.gguf")
    assert quant_matches("Llama-Q4_K_M.gguf", "q4_k_m") and quant_matches("Q4_K_M/x-00001-of-00002.gguf", "Q4_K_M")
    assert not quant_matches("Llama-Q4_K_M.gguf", "Q4_K") and not quant_matches("x-IQ4_XS.gguf", "Q4_XS")
    assert quant_matches("model.q8_0.gguf", "Q8_0") and not quant_matches("x-Q8_0_L.gguf", "Q8_0")
