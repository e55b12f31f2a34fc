"""`gpt4all-core inspect`: the summary, the JSON, and clean failures."""
from __future__ import annotations

import json
import subprocess
import sys

import gguf as gguf_ref


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpt4all_core.cli", *args], capture_output=True, text=True, timeout=120)


def test_inspect_summary(smollm2_path):
    ref = gguf_ref.GGUFReader(smollm2_path)
    params = sum(int(t.n_elements) for t in ref.tensors)
    out = run("inspect", str(smollm2_path))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"{params / 1e6:.1f} M" in text and "134.5 M" in text  # MODELS.md: 134.5M parameters
    assert "llama" in text and "Q4_1 ×210" in text and "Q8_0 ×1" in text
    assert "context length  8192" in text and "49152 tokens" in text and "smollm" in text
    assert "chat template   yes" in text


def test_inspect_json(gemma3_path):
    out = run("inspect", "--json", str(gemma3_path))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["architecture"] == "gemma3" and doc["vocab_size"] == 262144 and doc["chat_template"] is False
    tokens = doc["metadata"]["tokenizer.ggml.tokens"]
    assert tokens["length"] == 262144 and len(tokens["head"]) == 8 and tokens["type"] == "ARRAY[STRING]"
    assert doc["metadata"]["gemma3.block_count"] == 18
    assert len(doc["tensors"]) == doc["tensor_count"] and doc["tensors"][0]["nbytes"] > 0


def test_inspect_full_arrays(tmp_path, vocab_paths):
    phi3 = next(p for p in vocab_paths if "phi-3" in p.name)
    doc = json.loads(run("inspect", "--json", "--full-arrays", str(phi3)).stdout)
    assert isinstance(doc["metadata"]["tokenizer.ggml.tokens"], list)
    assert len(doc["metadata"]["tokenizer.ggml.tokens"]) == doc["vocab_size"] == 32064


def test_inspect_fails_cleanly(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x01\x00\x00\x00" + bytes(16))
    out = run("inspect", str(bad))
    assert out.returncode == 2
    assert "error:" in out.stderr and "version 1 is not supported" in out.stderr and "Traceback" not in out.stderr
    missing = run("inspect", str(tmp_path / "nope.gguf"))
    assert missing.returncode == 2 and "cannot open" in missing.stderr
