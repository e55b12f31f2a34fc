"""`gpt4all-core serve`'s options: what reaches the app, the warning for an open bind without keys,
and errors named before anything listens (uvicorn.run is replaced: nothing binds here)."""
from __future__ import annotations

import pytest
import uvicorn

from gpt4all_core import cli


@pytest.fixture
def runs(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_serve_defaults_and_options(smollm2_path, runs, capsys):
    assert cli.main(["serve", str(smollm2_path), "--parallel", "3", "--n-ctx", "300", "--cors-origin", "http://a.test"]) == 0
    app, kw = runs[0]
    assert kw["host"] == "127.0.0.1" and kw["port"] == 4891
    assert app.state.engine.n_slots == 3 and app.state.engine.n_ctx == 300
    assert "warning" not in capsys.readouterr().err


def test_open_bind_without_keys_warns(smollm2_path, runs, capsys):
    cli.main(["serve", str(smollm2_path), "--host", "0.0.0.0"])
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err


def test_open_bind_with_keys_does_not_warn(smollm2_path, runs, capsys, tmp_path):
    keys = tmp_path / "k.json"
    keys.write_text('{"keys": [{"key": "sk-aaaaaaaa"}]}')
    cli.main(["serve", str(smollm2_path), "--host", "0.0.0.0", "--api-key-file", str(keys)])
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("args, match", [
    (["--parallel", "0"], "--parallel"),
    (["--api-key-file", "/nonexistent/keys.json"], "cannot read"),
    (["--chat-template", "/nonexistent/t.jinja"], "No such file"),
])
def test_bad_options_are_named(smollm2_path, runs, capsys, args, match):
    assert cli.main(["serve", str(smollm2_path), *args]) == 2 and not runs
    assert match in capsys.readouterr().err
