"""Model work a request starts itself (an embedding, a LocalDocs query) runs on a thread of its own
that ends with it (gpt4all_core/server/compute.py): neither the event loop's thread nor a pool
thread keeps an OpenMP team beside the engine thread's, which slowed every later decode step."""
from __future__ import annotations

import asyncio
import threading

import pytest
from fastapi.testclient import TestClient
from localdocs_fixtures import corpus, embedder, indexed, ld_env  # noqa: F401

from gpt4all_core.server import ServerConfig, create_app
from gpt4all_core.server.compute import in_own_thread


def ended(thread: threading.Thread) -> bool:
    thread.join(timeout=10)
    return not thread.is_alive()


def test_in_own_thread_returns_raises_and_ends():
    seen = []

    def work(x):
        seen.append(threading.current_thread())
        if x < 0:
            raise ValueError(f"negative: {x}")
        return 2 * x

    async def both():
        value = await in_own_thread(work, 21)
        with pytest.raises(ValueError, match="negative: -1"):
            await in_own_thread(work, -1)
        return value

    assert asyncio.run(both()) == 42
    assert len(seen) == 2 and seen[0] is not seen[1]
    assert all(t is not threading.main_thread() and t.name == "gpt4all-core-compute" and ended(t) for t in seen)


class ThreadRecordingEmbedder:
    model_id = "rec-embed.gguf"

    def __init__(self):
        self.threads = []

    def embed(self, texts, dimensions):
        self.threads.append(threading.current_thread())
        return [[float(len(t))] for t in texts], len(texts)


def test_embeddings_and_localdocs_queries_run_on_threads_that_end(smollm2_path, smollm2_model, indexed,
                                                                  monkeypatch):
    db, _ = indexed
    searched = []
    search = db.search

    def recording_search(*args, **kwargs):
        searched.append(threading.current_thread())
        return search(*args, **kwargs)

    monkeypatch.setattr(db, "search", recording_search)
    rec = ThreadRecordingEmbedder()
    app = create_app(ServerConfig(model_path=str(smollm2_path), model_id="m", embedder=rec, localdocs_db=db),
                     model=smollm2_model)
    with TestClient(app) as http:
        for _ in range(2):
            r = http.post("/v1/embeddings", json={"model": "rec-embed.gguf", "input": ["a", "bb"]})
            assert r.status_code == 200 and [d["embedding"] for d in r.json()["data"]] == [[1.0], [2.0]]
        r = http.post("/v1/chat/completions", json={
            "model": "m", "max_tokens": 1, "temperature": 0, "localdocs": ["corpus"],
            "messages": [{"role": "user", "content": "What is the guest wifi password for the Lisbon office?"}]})
        assert r.status_code == 200 and r.json()["choices"][0]["references"]
    threads = rec.threads + searched
    assert len(rec.threads) == 2 and len(searched) == 1 and rec.threads[0] is not rec.threads[1]
    assert all(t is not threading.main_thread() and t.name == "gpt4all-core-compute" and ended(t) for t in threads)
