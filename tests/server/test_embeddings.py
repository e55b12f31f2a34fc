"""POST /v1/embeddings through the embedder hook: an in-process app with a stand-in embedder (the
BERT model lands separately), driven by the openai client; and the clear 400 without one."""
from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient
from server_process import MODEL_ID

from gpt4all_core.server import ServerConfig, create_app


class FakeEmbedder:
    """Deterministic vectors from the text: length, vowels, and a 1 for the word 'cat'."""
    model_id = "fake-embed.gguf"

    def __init__(self):
        self.calls = []

    def embed(self, texts, dimensions):
        self.calls.append((list(texts), dimensions))
        if dimensions is not None and dimensions > 3:
            raise ValueError(f"dimensionality {dimensions}: this model gives at most 3")
        vecs = [[float(len(t)), float(sum(c in "aeiou" for c in t)), float("cat" in t)][:dimensions or 3]
                for t in texts]
        return vecs, sum(len(t.split()) for t in texts)


@pytest.fixture(scope="module")
def embedder():
    return FakeEmbedder()


@pytest.fixture(scope="module")
def client(smollm2_path, smollm2_model, embedder):
    app = create_app(ServerConfig(model_path=str(smollm2_path), embedder=embedder), model=smollm2_model)
    with TestClient(app) as http:
        yield openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=http, max_retries=0)


def test_embeddings_through_the_openai_client(client, embedder):
    r = client.embeddings.create(model="fake-embed.gguf", input=["a cat", "dog"])   # the client asks for base64
    assert [d.index for d in r.data] == [0, 1]
    np.testing.assert_array_equal(r.data[0].embedding, [5, 2, 1])
    np.testing.assert_array_equal(r.data[1].embedding, [3, 1, 0])
    assert r.usage.prompt_tokens == 3 == r.usage.total_tokens and r.model == "fake-embed.gguf"
    one = client.embeddings.create(model="fake-embed.gguf", input="cat", encoding_format="float", dimensions=2)
    assert one.data[0].embedding == [3.0, 1.0] and embedder.calls[-1] == (["cat"], 2)
    assert "fake-embed.gguf" in [m.id for m in client.models.list()]


def test_embedding_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model=MODEL_ID, input="x")
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="fake-embed.gguf", input="x", dimensions=7)
    assert e.value.body["param"] == "dimensions" and "at most 3" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="fake-embed.gguf", input=[[1, 2]])
    assert e.value.body["param"] == "input"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="fake-embed.gguf", input=[])


def test_without_an_embedding_model_the_answer_says_so(server):
    r = httpx.post(server.url + "/v1/embeddings", json={"model": "all-MiniLM-L6-v2.gguf", "input": "x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_embedding_model"
    assert "--embedding-model" in r.json()["error"]["message"]


def test_a_real_embedding_model_behind_a_real_server(smollm2_path, tmp_path_factory):
    """`serve --embedding-model` with MiniLM converted to GGUF: the openai client gets Embed4All's
    own vectors (whichever encoding it asks for), and the model is listed."""
    from bert_files import minilm_folder
    from server_process import ServerProcess

    from gpt4all_core.api import Embed4All
    from gpt4all_core.convert import convert
    folder = tmp_path_factory.mktemp("minilm")
    path = convert(minilm_folder(), folder / "all-MiniLM-L6-v2.f16.gguf", "f16")
    s = ServerProcess(smollm2_path, "--parallel", "1", "--n-ctx", "128", "--embedding-model", str(path),
                      log=folder / "server.log")
    try:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="x", max_retries=0, timeout=60)
        texts = ["The cat sat on the mat.", "A completely different sentence about finance."]
        r = client.embeddings.create(model=path.name, input=texts)   # base64 on the wire
        flat = client.embeddings.create(model=path.name, input=texts, encoding_format="float")
        want = Embed4All(str(path)).embed(texts, return_dict=True)
        for got in (r, flat):
            np.testing.assert_allclose([d.embedding for d in got.data], want["embeddings"], rtol=0, atol=1e-6)
        assert r.usage.prompt_tokens == want["n_prompt_tokens"]
        assert path.name in [m.id for m in client.models.list()]
    finally:
        s.stop()
