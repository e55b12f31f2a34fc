"""LocalDocs in chat completions: a request's `localdocs` collections (or the server's default ones)
put GPT4All's "### Context:" block before the last user message, and each choice carries the
snippets as GPT4All's `references`; without collections `references` is null, as GPT4All answers."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from localdocs_corpus import PLANTED
from localdocs_fixtures import corpus, embedder, indexed, ld_env  # noqa: F401

from gpt4all_core.localdocs import format_context
from gpt4all_core.server import ServerConfig, create_app



@pytest.fixture(scope="module")
def http(smollm2_path, smollm2_model, indexed):
    db, _ = indexed
    app = create_app(ServerConfig(model_path=str(smollm2_path), model_id="m", localdocs_db=db), model=smollm2_model)
    with TestClient(app) as client:
        yield client


def chat(http, question, **extra):
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": question}],
                                                 "max_tokens": 2, "temperature": 0, **extra})
    return r


def test_references_of_the_planted_passage(http, corpus, indexed):
    db, _ = indexed
    name, passage, question = PLANTED[1]
    r = chat(http, question, localdocs=["corpus"])
    assert r.status_code == 200, r.text
    refs = r.json()["choices"][0]["references"]
    assert len(refs) == 3 and refs[0]["file"] == name.split("/")[-1] and passage in refs[0]["text"]
    assert set(refs[0]) >= {"text", "file", "title", "author", "date", "page", "from", "to"}
    # the model saw the context block: the prompt is longer than the bare question's by its tokens
    bare = chat(http, question).json()
    assert bare["choices"][0]["references"] is None
    context = format_context(db.search(["corpus"], question, 3))
    assert r.json()["usage"]["prompt_tokens"] > bare["usage"]["prompt_tokens"] + len(context) // 8


def test_unknown_collection_is_a_400_naming_the_field(http):
    r = chat(http, "hello", localdocs=["no-such-collection"])
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "localdocs"


def test_server_default_collections(smollm2_path, smollm2_model, indexed):
    db, _ = indexed
    name, passage, question = PLANTED[0]
    app = create_app(ServerConfig(model_path=str(smollm2_path), model_id="m", localdocs=["corpus"], localdocs_db=db),
                     model=smollm2_model)
    with TestClient(app) as client:
        refs = chat(client, question).json()["choices"][0]["references"]
        assert refs[0]["file"] == name.split("/")[-1]
        assert chat(client, question, localdocs=[]).json()["choices"][0]["references"] is None
