"""HTTP around the API: routes and methods that do not exist, bodies that are too large or not
JSON, CORS preflight, the published OpenAPI schema, and a client that goes away mid-stream."""
from __future__ import annotations

import json
import time

import httpx
import pytest
from server_process import MODEL_ID, ServerProcess


def post(server, path, body, **kw):
    return httpx.post(server.url + path, content=body if not isinstance(body, (dict, list)) else json.dumps(body),
                      headers={"content-type": "application/json", **kw.pop("headers", {})}, timeout=60, **kw)


def assert_openai_error(r, status, param=None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if param is not None:
        assert err["param"] == param
    return err


def test_unknown_route_and_wrong_method(server):
    err = assert_openai_error(httpx.get(server.url + "/v1/nothing"), 404)
    assert "GET /v1/nothing" in err["message"]
    assert_openai_error(httpx.delete(server.url + "/v1/models"), 405)
    assert_openai_error(httpx.get(server.url + "/v1/chat/completions"), 405)


def test_bodies_that_are_not_right(server):
    assert "parse the JSON body" in assert_openai_error(post(server, "/v1/completions", b"{nope"), 400)["message"]
    assert_openai_error(post(server, "/v1/completions", b"[1, 2]"), 400)
    assert_openai_error(post(server, "/v1/completions", {"prompt": "x"}), 400, "model")
    assert_openai_error(post(server, "/v1/completions", {"model": MODEL_ID, "prompt": "x", "n": True}), 400, "n")
    r = httpx.post(server.url + "/v1/completions", content=b"model=x", headers={"content-type": "text/plain"})
    assert "Content-Type" in assert_openai_error(r, 400)["message"]
    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]
    assert_openai_error(post(server, "/v1/chat/completions", {"model": MODEL_ID, "messages": msgs}), 400)
    tool_reply = [{"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}]
    err = assert_openai_error(post(server, "/v1/chat/completions", {"model": MODEL_ID, "messages": tool_reply}), 400)
    assert err["code"] == "unsupported_parameter"


def test_too_large_bodies_are_413(server):
    big = json.dumps({"model": MODEL_ID, "prompt": "x" * (5 << 20)})
    assert_openai_error(post(server, "/v1/completions", big), 413)

    def chunks():   # no Content-Length: counted while it arrives
        yield b'{"model": "m", "prompt": "'
        for _ in range(6):
            yield b"x" * (1 << 20)
        yield b'"}'
    assert_openai_error(post(server, "/v1/completions", chunks()), 413)


def test_cors_preflight(keyed_server):
    r = httpx.options(keyed_server.url + "/v1/chat/completions", headers={
        "Origin": "http://example.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://example.test"
    assert "POST" in r.headers["access-control-allow-methods"]
    r = httpx.options(keyed_server.url + "/v1/models", headers={
        "Origin": "http://elsewhere.test", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = httpx.get(keyed_server.url + "/v1/models", headers={"Origin": "http://example.test"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "http://example.test"


def test_openapi_schema_documents_openai_errors(server):
    schema = httpx.get(server.url + "/openapi.json").json()
    op = schema["paths"]["/v1/chat/completions"]["post"]
    assert "422" not in op["responses"] and {"400", "401", "429", "503"} <= set(op["responses"])
    body = schema["components"]["schemas"]["ChatCompletionRequest"]
    assert body["additionalProperties"] is False and "top_k" in body["properties"]


def test_a_client_that_goes_away_frees_its_slot(server):
    """Two slots, both taken by streams that are dropped after their first chunk: the slots free at
    once, so a third request is served right away instead of waiting for 48-token replies."""
    body = {"model": MODEL_ID, "prompt": "Once upon a time", "max_tokens": 48, "stream": True, "temperature": 0}
    for _ in range(2):
        with httpx.stream("POST", server.url + "/v1/completions", json=body, timeout=60) as r:
            next(r.iter_lines())
    deadline = time.monotonic() + 5
    while httpx.get(server.url + "/health").json()["busy_slots"] and time.monotonic() < deadline:
        time.sleep(0.02)
    health = httpx.get(server.url + "/health").json()
    assert health["busy_slots"] == 0 and health["queued"] == 0


def test_a_non_streaming_client_that_goes_away_frees_its_slot(server):
    """The server notices within a poll interval (0.25 s), though it has sent nothing yet, and cancels
    the jobs: fewer tokens are made than one of the 2 x 48 asked for. Each completion's prompt is
    about 420 tokens, whose evaluation outlasts a poll interval: with a short prompt the whole 96
    tokens now take about as long as one poll, and the check would race the engine."""
    def generated():
        return httpx.get(server.url + "/health").json()["stats"]["generated_tokens"]
    before = generated()
    prompt = "Once upon a time, " + ", ".join(f"room {i}" for i in range(100, 170))  # fits 512 with 48 more
    body = {"model": MODEL_ID, "prompt": prompt, "max_tokens": 48, "temperature": 0, "n": 2,
            "stop": ["never appears"]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/completions", json=body, timeout=httpx.Timeout(5, read=0.05))
    deadline = time.monotonic() + 5
    while httpx.get(server.url + "/health").json()["busy_slots"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert httpx.get(server.url + "/health").json()["busy_slots"] == 0
    assert generated() - before < 48


def test_a_full_queue_is_a_503_with_retry_after(smollm2_path, tmp_path):
    """One slot, no waiting room: while a stream holds the slot, the next request is turned away;
    one that could never fit is a 400."""
    s = ServerProcess(smollm2_path, "--parallel", "1", "--max-queue", "0", "--n-ctx", "128", log=tmp_path / "log")
    try:
        body = {"model": MODEL_ID, "prompt": "1, 2, 3, 4, 5, 6, 7,", "max_tokens": 100, "stream": True,
                "temperature": 0, "stop": ["never appears"]}
        with httpx.stream("POST", s.url + "/v1/completions", json=body, timeout=60) as held:
            lines = held.iter_lines()   # kept: a dropped line iterator closes the stream, freeing the slot
            next(lines)
            r = post(s, "/v1/completions", {"model": MODEL_ID, "prompt": "Hi", "max_tokens": 2})
            err = assert_openai_error(r, 503)
            assert err["code"] == "queue_full" and r.headers["retry-after"] == "1"
        # more completions than slot and queue could ever hold: a 400 naming n, not "try again"
        r = post(s, "/v1/completions", {"model": MODEL_ID, "prompt": "Hi", "max_tokens": 2, "n": 2})
        err = assert_openai_error(r, 400)
        assert err["param"] == "n" and err["code"] == "too_many_completions" and "at most 1" in err["message"]
    finally:
        s.stop()


def test_a_chat_turn_reuses_the_history_a_slot_holds(server):
    """Stateless requests, but the second turn resends the first: only what is new is evaluated."""
    def stats():
        return httpx.get(server.url + "/health").json()["stats"]
    first = [{"role": "system", "content": "You are a helpful assistant who answers in one short sentence."},
             {"role": "user", "content": "Name a fruit that is yellow."}]
    r = post(server, "/v1/chat/completions", {"model": MODEL_ID, "messages": first, "temperature": 0,
                                               "max_tokens": 8}).json()
    before = stats()
    second = first + [r["choices"][0]["message"], {"role": "user", "content": "And a red one?"}]
    r2 = post(server, "/v1/chat/completions", {"model": MODEL_ID, "messages": second, "temperature": 0,
                                                "max_tokens": 8}).json()
    after = stats()
    reused = after["prompt_tokens_reused"] - before["prompt_tokens_reused"]
    evaluated = after["prompt_tokens_evaluated"] - before["prompt_tokens_evaluated"]
    assert reused >= r["usage"]["prompt_tokens"] and reused + evaluated == r2["usage"]["prompt_tokens"]
