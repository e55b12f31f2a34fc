"""`gpt4all-core generate` and `gpt4all-core chat` (non-interactive paths; the loop reads stdin)."""
from __future__ import annotations

import io
import sys

from model_files import random_model

from gpt4all_core.cli import main

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>{% endfor %}<|assistant|>"


def test_generate_prints_the_continuation(capsys):
    from gpt4all_core import GPT4All
    path = str(random_model("llama"))
    assert main(["generate", path, "Once upon a time", "--max-tokens", "8", "--temp", "0"]) == 0
    out = capsys.readouterr().out
    with GPT4All(path) as m:
        expected = m.generate("Once upon a time", max_tokens=8, temp=0)
    assert out == expected + "\n"


def test_generate_reports_a_missing_model(capsys, tmp_path):
    assert main(["generate", "no-such-model", "hi", "--model-path", str(tmp_path)]) == 2
    assert "no-such-model.gguf" in capsys.readouterr().err


def test_chat_without_a_terminal_answers_one_question(capsys, monkeypatch):
    path = random_model("llama")
    from gpt4all_core import gguf
    with gguf.open(path) as f:  # the random model has no template: the CLI must say so
        assert "tokenizer.chat_template" not in f.metadata
    monkeypatch.setattr(sys, "stdin", io.StringIO("What is up?\nsecond line ignored\n"))
    assert main(["chat", str(path), "--max-tokens", "4"]) == 2
    assert "no chat template" in capsys.readouterr().err


def test_chat_question_on_a_model_with_a_template(capsys, monkeypatch):
    from gpt4all_core.models.base import Model
    monkeypatch.setattr(Model, "chat_template", property(lambda self: TEMPLATE))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["chat", str(random_model("llama")), "--question", "Hello?", "--max-tokens", "5", "--temp", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("> Hello?\n") and out.count("\n") >= 2
