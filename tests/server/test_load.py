"""Load from a separate process: many concurrent streaming clients against a server with fewer
slots. Every stream must be complete and well-formed, and every reply exactly what the same request
gets alone (greedy), so no tokens are lost or crossed between clients; the server's memory must
not grow over a second, identical round. The default suite runs 8 clients; `-m slow` runs 32 for up
to a minute."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from server_process import MODEL_ID, ServerProcess

QUESTIONS = ["What is 2+2?", "Name a colour.", "Write a haiku about rain.", "What is the capital of Italy?",
             "Give me a random number.", "Say hello in French.", "What is a cat?", "Count to five."]
CLIENTS_SCRIPT = Path(__file__).parents[1] / "support" / "load_clients.py"
RSS_GROWTH_KB = 25_000


def bodies(max_tokens: int) -> list[dict]:
    return [{"model": MODEL_ID, "messages": [{"role": "user", "content": q}], "temperature": 0,
             "max_tokens": max_tokens} for q in QUESTIONS]


def load(server, requests_file: Path, clients: int, rounds: int, seconds: float) -> list[dict]:
    out = subprocess.run([sys.executable, str(CLIENTS_SCRIPT), server.url, str(requests_file), "--clients",
                          str(clients), "--rounds", str(rounds), "--seconds", str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 300, check=True)
    return json.loads(out.stdout)


def run_load_test(smollm2_path, tmp_path, parallel, clients, rounds, seconds, max_tokens):
    server = ServerProcess(smollm2_path, "--parallel", str(parallel), "--n-ctx", "256", "--max-queue", "64",
                           log=tmp_path / "server.log")
    try:
        reqs = bodies(max_tokens)
        solo = []
        for b in reqs:   # one at a time: the reference
            r = httpx.post(server.url + "/v1/chat/completions", json=b, timeout=120).json()
            solo.append((r["choices"][0]["message"]["content"], r["choices"][0]["finish_reason"]))
        path = tmp_path / "requests.json"
        path.write_text(json.dumps(reqs))
        results = []
        rss = []
        for _ in range(2):   # the first round touches every slot's cache; the second must not grow
            results += load(server, path, clients, rounds, seconds)
            rss.append(server.rss_kb())
        health = httpx.get(server.url + "/health").json()
    finally:
        server.stop()
    assert len(results) >= 2 * clients
    bad = [r for r in results if r["problems"]]
    assert not bad, bad[:3]
    wrong = [(r["request"], r["text"], solo[r["request"]][0]) for r in results
             if (r["text"], r["finish_reason"]) != solo[r["request"]]]
    assert not wrong, wrong[:3]
    assert rss[1] - rss[0] < RSS_GROWTH_KB, f"server RSS grew from {rss[0]} kB to {rss[1]} kB"
    assert health["busy_slots"] == 0 and health["queued"] == 0
    assert health["stats"]["steps"] < health["stats"]["generated_tokens"]   # slots did share steps


def test_concurrent_streams_match_solo_runs(smollm2_path, tmp_path):
    run_load_test(smollm2_path, tmp_path, parallel=4, clients=8, rounds=1, seconds=120, max_tokens=16)


@pytest.mark.slow
def test_32_concurrent_streams_match_solo_runs(smollm2_path, tmp_path):
    run_load_test(smollm2_path, tmp_path, parallel=8, clients=32, rounds=4, seconds=60, max_tokens=48)
