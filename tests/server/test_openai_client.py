"""The official `openai` client against a real `gpt4all-core serve` process on 127.0.0.1: models,
chat and text completions (whole and streamed), the fields that shape them, and the exception
classes the client raises for the server's errors."""
from __future__ import annotations

import math

import openai
import pytest
from server_process import MODEL_ID


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0, timeout=60)


def chat(client, content="What is 2+2?", **kw):
    kw.setdefault("temperature", 0)
    return client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": content}], **kw)


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL_ID]
    m = client.models.retrieve(MODEL_ID)
    assert m.id == MODEL_ID and m.object == "model" and m.owned_by == "gpt4all-core"


def test_unknown_model_is_a_404_not_an_empty_200(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-4o")
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def test_chat_completion(client):
    r = chat(client, max_tokens=16)
    c = r.choices[0]
    assert r.object == "chat.completion" and r.model == MODEL_ID and r.id.startswith("chatcmpl-")
    assert c.message.role == "assistant" and "4" in c.message.content
    assert c.finish_reason in ("stop", "length")
    assert c.model_extra.get("references", "absent") is None   # GPT4All's field, null without LocalDocs
    assert r.usage.prompt_tokens > 5 and 0 < r.usage.completion_tokens <= 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_greedy_is_repeatable_and_max_tokens_is_exact(client):
    a, b = chat(client, max_tokens=5), chat(client, max_tokens=5)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage.completion_tokens == 5 and a.choices[0].finish_reason == "length"


def test_default_max_tokens_runs_to_a_stop_or_the_cap(client):
    r = chat(client, "Say only the word yes.")
    assert r.choices[0].finish_reason == "stop" or r.usage.completion_tokens == 48   # the server's --max-tokens


def test_stop_strings_end_the_reply_without_themselves(client):
    full = chat(client, max_tokens=16).choices[0].message.content
    word = full.split()[2]
    cut = chat(client, max_tokens=16, stop=[word]).choices[0]
    assert cut.finish_reason == "stop" and cut.message.content == full[:full.index(word)]


def test_n_choices_and_seeds(client):
    r = chat(client, "Write a word.", n=3, temperature=1.5, seed=42, max_tokens=6)
    assert [c.index for c in r.choices] == [0, 1, 2]
    again = chat(client, "Write a word.", n=3, temperature=1.5, seed=42, max_tokens=6)
    assert [c.message.content for c in r.choices] == [c.message.content for c in again.choices]
    assert len({c.message.content for c in r.choices}) > 1   # seed + i per choice: not three copies


def test_chat_logprobs(client):
    r = chat(client, max_tokens=4, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens == 4
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob >= entry.top_logprobs[2].logprob
        assert entry.token == entry.top_logprobs[0].token   # greedy takes the most likely token
        assert bytes(entry.bytes).decode("utf-8", "replace") == entry.token
    assert "".join(e.token for e in content) == r.choices[0].message.content
    total = sum(math.exp(t.logprob) for t in content[0].top_logprobs)
    assert 0 < total <= 1.0001


def test_streaming_chat_equals_the_whole_reply(client):
    whole = chat(client, max_tokens=12).choices[0].message.content
    stream = chat(client, max_tokens=12, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"] or finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens <= 12
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_usage_has_no_usage_chunk(client):
    chunks = list(chat(client, max_tokens=3, stream=True))
    assert all(c.choices for c in chunks)


def test_text_completion_whole_streamed_and_echoed(client):
    kw = dict(model=MODEL_ID, prompt="The capital of France is", max_tokens=6, temperature=0)
    r = client.completions.create(**kw)
    assert r.object == "text_completion" and r.choices[0].text.startswith(" Paris")
    streamed = "".join(c.choices[0].text for c in client.completions.create(**kw, stream=True) if c.choices)
    assert streamed == r.choices[0].text
    echoed = client.completions.create(**kw, echo=True, logprobs=2)
    assert echoed.choices[0].text == "The capital of France is" + r.choices[0].text
    lp = echoed.choices[0].logprobs
    assert lp.token_logprobs[0] is None and all(v <= 0 for v in lp.token_logprobs[1:])
    assert "".join(lp.tokens) == echoed.choices[0].text
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0


def test_several_prompts_and_token_prompts(client):
    r = client.completions.create(model=MODEL_ID, prompt=["1, 2, 3,", "a, b, c,"], max_tokens=3, temperature=0, n=2)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert r.choices[0].text == r.choices[1].text and r.choices[2].text == r.choices[3].text
    assert r.choices[0].text != r.choices[2].text
    ids = client.completions.create(model=MODEL_ID, prompt=[[504, 3575, 282]], max_tokens=3, temperature=0)
    assert ids.usage.prompt_tokens == 3


def test_bad_requests_are_400s_naming_the_field(client):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, extra_body={"frobnicate": 1})
    assert e.value.body["message"] == "Unrecognized request argument supplied: frobnicate"
    assert e.value.body["param"] == "frobnicate"
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    assert e.value.body["param"] == "tools" and e.value.body["code"] == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, logit_bias={"1": 5})
    assert e.value.body["param"] == "logit_bias"
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
    assert e.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, temperature=3)
    assert e.value.body["param"] == "temperature" and e.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, "word " * 600)
    assert e.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, stream_options={"include_usage": True})
    assert e.value.body["param"] == "stream_options"
