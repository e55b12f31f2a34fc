"""`gpt4all-core pull | list | inspect | estimate` against the fake Hub; a pull killed mid-file
and one interrupted with Ctrl-C both resume to a correct file."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from model_files import random_model

from gpt4all_core.cli import main

BIG = np.random.default_rng(7).bytes(3 << 20)


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def repo(hub):
    hub.add_repo("tester/tiny-GGUF", {"tiny-Q8_0.gguf": random_model("llama").read_bytes(),
                                      "tiny-Q4_0.gguf": random_model("llama", qtype="Q4_0").read_bytes()})
    return hub


def test_pull_fetches_only_missing_or_changed(repo, models, capsys):
    rc, out, err = run(capsys, "pull", "hf:tester/tiny-GGUF:Q8_0", "hf:tester/tiny-GGUF:Q4_0", "--dir", str(models))
    assert rc == 0, err
    assert f"hf:tester/tiny-GGUF:Q8_0: {models / 'tiny-Q8_0.gguf'} (downloaded)" in out and out.count("downloaded") == 2
    n = len(repo.body_requests("/_blob/"))
    rc, out, _ = run(capsys, "pull", "hf:tester/tiny-GGUF:Q8_0", "--dir", str(models))
    assert rc == 0 and "(up to date)" in out and len(repo.body_requests("/_blob/")) == n
    changed = random_model("llama", seed=1).read_bytes()
    repo.put("tester/tiny-GGUF", "tiny-Q8_0.gguf", changed)  # a new commit on the Hub: a new sha256
    rc, out, _ = run(capsys, "pull", "hf:tester/tiny-GGUF:Q8_0", "--dir", str(models))
    assert rc == 0 and "(downloaded)" in out and (models / "tiny-Q8_0.gguf").read_bytes() == changed


def test_list(hub, models, capsys):
    data = b"m" * 1000
    hub.set_catalog([{"filename": "cat.gguf", "name": "Cat", "filesize": "1000", "ramrequired": "1",
                      "md5sum": hashlib.md5(data).hexdigest(), "url": hub.add_file("cat.gguf", data)},
                     {"filename": "dog.gguf", "name": "Dog", "filesize": "2147483648", "ramrequired": "4",
                      "url": "http://127.0.0.1:9/dog.gguf"}])
    (models / "mine.gguf").write_bytes(b"GGUF")
    assert run(capsys, "pull", "cat.gguf", "--dir", str(models))[0] == 0
    rc, out, _ = run(capsys, "list", "--dir", str(models))
    assert rc == 0 and f"catalog: {hub.url}/models3.json" in out
    lines = out.splitlines()
    assert any(line.startswith("* cat.gguf") and "Cat" in line and "1000 B" in line for line in lines)
    assert any(line.startswith("  dog.gguf") and "2.00 GiB" in line and "RAM 4 GB" in line for line in lines)
    assert "* mine.gguf" in lines
    rc, out, _ = run(capsys, "list", "--json", "--dir", str(models))
    doc = json.loads(out)
    assert [m["filename"] for m in doc["catalog"]] == ["cat.gguf", "dog.gguf"] and "mine.gguf" in doc["local"]


def test_inspect_and_estimate_remote_without_downloading(repo, models, capsys):
    rc, out, err = run(capsys, "inspect", "hf:tester/tiny-GGUF:Q8_0", "--dir", str(models))
    assert rc == 0, err
    assert "architecture    llama (random llama)" in out and "tiny-Q8_0.gguf" in out
    rc, out, err = run(capsys, "estimate", "hf:tester/tiny-GGUF:Q8_0", "--ctx", "1024", "--dir", str(models))
    assert rc == 0, err
    kv = 2 * 2 * 1024 * 2 * 32 * 2  # random_model: 2 blocks, 2 KV heads of 128 / 4
    assert kv == 512 << 10 and "KV cache         512.00 KiB (F16, 512 B per token)" in out
    assert "largest context  4096 tokens fit" in out  # the trained context: a tiny model fits whole
    assert "no Vulkan backend yet" in out
    assert not any(models.iterdir())  # only headers were read
    assert all(r["range"] for r in repo.requests if r["path"].startswith("/_blob/"))
    rc, out, _ = run(capsys, "estimate", str(random_model("llama")), "--ctx", "1024", "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["kv_cache"] == kv and doc["n_ctx"] == 1024 and doc["devices"] == []


@pytest.mark.parametrize("args, message", [
    (["pull", "hf:tester/tiny-GGUF:Q8_0"], "cannot connect to 127.0.0.1:9"),
    (["pull", "http://127.0.0.1:9/x.gguf"], "cannot connect to 127.0.0.1:9"),
    (["inspect", "hf:tester/tiny-GGUF:Q8_0"], "cannot connect to 127.0.0.1:9"),
    (["pull", "not-in-any-catalog"], "nor in the GPT4All catalog"),
    (["pull", "hf:bad"], "expected hf:<user>/<repo>"),
])
def test_failures_offline(args, message, capsys, models):
    rc, out, err = run(capsys, *args, "--dir", str(models))
    assert rc == 2 and message in err and "Traceback" not in err


def test_failures_online(hub, capsys, models):
    hub.add_repo("corp/gated", {"g-Q4_0.gguf": b"x" * 100}, gated=True)
    rc, _, err = run(capsys, "pull", "hf:corp/gated:Q4_0", "--dir", str(models))
    assert rc == 2 and "HTTP 401" in err and "set HF_TOKEN" in err
    rc, _, err = run(capsys, "pull", f"{hub.url}/files/missing.gguf", "--dir", str(models))
    assert rc == 2 and "HTTP 404" in err and "missing.gguf" in err
    assert not any(models.iterdir())


def _default_sigint() -> None:
    """In the child before exec: Ctrl-C's default action, whatever this process inherited (an
    ignored SIGINT passes to children, and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _pull_subprocess(url, models, env_extra):
    env = {**os.environ, **env_extra}
    return subprocess.Popen([sys.executable, "-m", "gpt4all_core.cli", "pull", url, "--dir", str(models)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_default_sigint)


def _wait_for_progress(models, name, proc, at_least=200_000) -> int:
    state = models / f"{name}.part.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            done = sum(r[2] - r[0] for r in json.loads(state.read_text())["ranges"])
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= at_least:
            return done
        time.sleep(0.05)
    raise AssertionError("the download made no recorded progress")


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_interrupted_pull_resumes(hub, models, capsys, how):
    hub.throttle = 600_000  # 3 MiB in ~5 s: slow enough to stop it mid-file
    url = hub.add_file("big.gguf", BIG)
    proc = _pull_subprocess(url, models, {})
    _wait_for_progress(models, "big.gguf", proc)
    if how == "kill":
        proc.kill()  # SIGKILL: no chance to clean up; the state on disk is all there is
        proc.wait(10)
    else:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "partial download is kept" in err and "Traceback" not in err
    assert not (models / "big.gguf").exists() and (models / "big.gguf.part").exists()
    recorded = sum(r[2] - r[0] for r in json.loads((models / "big.gguf.part.json").read_text())["ranges"])
    assert 0 < recorded < len(BIG)
    hub.throttle = None
    rc, out, err = run(capsys, "pull", url, "--dir", str(models))
    assert rc == 0 and "(downloaded)" in out, err
    assert hashlib.sha256((models / "big.gguf").read_bytes()).digest() == hashlib.sha256(BIG).digest()
    assert hub.ranges_requested("big.gguf")[-1] == f"bytes={recorded}-{len(BIG) - 1}"  # resumed, not restarted
    assert sorted(p.name for p in models.iterdir()) == [".hub", "big.gguf"]
