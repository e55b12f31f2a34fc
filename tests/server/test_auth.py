"""API keys: the key file's checks, the limits per key (sliding windows, Retry-After, token budget),
usage per key; and the same seen through the openai client against a real keyed server."""
from __future__ import annotations

import json

import httpx
import openai
import pytest
from server_process import MODEL_ID

from gpt4all_core.server.auth import ApiKey, Gate, KeyFileError, load_keys
from gpt4all_core.server.errors import APIError


def write(tmp_path, data) -> str:
    p = tmp_path / "keys.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(p)


@pytest.mark.parametrize("data, match", [
    ("{not json", "not a JSON file"),
    ({"keys": []}, "at least one key"),
    ({"keys": [{"key": "short"}]}, r"keys\[0\].key"),
    ({"keys": [{"key": "sk-aaaaaaaa", "name": "a"}, {"key": "sk-aaaaaaaa", "name": "b"}]}, "key given twice"),
    ({"keys": [{"key": "sk-aaaaaaaa", "requests_per_minute": -1}]}, r"keys\[0\].requests_per_minute"),
    ({"keys": [{"key": "sk-aaaaaaaa", "token_budget": "lots"}]}, "token_budget"),
    ({"keys": [{"key": "sk-aaaaaaaa", "rpm": 3}]}, "unknown field 'rpm'"),
])
def test_bad_key_files_are_named(tmp_path, data, match):
    with pytest.raises(KeyFileError, match=match):
        load_keys(write(tmp_path, data))
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keys(tmp_path / "absent.json")


def test_key_file_loads(tmp_path):
    keys = load_keys(write(tmp_path, {"keys": [{"key": "sk-aaaaaaaa", "name": "a", "requests_per_day": 3},
                                               {"key": "sk-bbbbbbbb"}]}))
    assert keys[0] == ApiKey("a", "sk-aaaaaaaa", requests_per_day=3) and keys[1].name == "key-1"
    assert "sk-aaaaaaaa" not in repr(keys[0])   # names in logs, never the secret


class Clock:
    t = 1000.0

    def __call__(self):
        return self.t


def test_limits_slide_and_say_when_to_retry():
    clock = Clock()
    key = ApiKey("k", "sk-kkkkkkkk", requests_per_minute=2, requests_per_day=3)
    gate = Gate([key], clock)
    gate.admit(key)
    clock.t += 10
    gate.admit(key)
    with pytest.raises(APIError) as e:
        gate.admit(key)
    assert e.value.status == 429 and e.value.headers["Retry-After"] == "50" and e.value.code == "rate_limit_exceeded"
    clock.t += 50   # the first request leaves the minute
    gate.admit(key)
    clock.t += 120
    with pytest.raises(APIError, match="3 requests per day"):
        gate.admit(key)
    clock.t += 86400
    gate.admit(key)
    assert gate.usage(key)["requests"] == 4 and gate.usage(key)["remaining"]["requests_today"] == 2


def test_token_budget_and_usage():
    key = ApiKey("k", "sk-kkkkkkkk", token_budget=100)
    gate = Gate([key])
    gate.admit(key)
    gate.record(key, 60, 40)
    with pytest.raises(APIError) as e:
        gate.admit(key)
    assert e.value.status == 429 and e.value.code == "insufficient_quota"
    u = gate.usage(key)
    assert (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"], u["remaining"]["tokens"]) == (60, 40, 100, 0)


def test_authentication():
    gate = Gate([ApiKey("a", "sk-aaaaaaaa")])
    assert gate.authenticate("Bearer sk-aaaaaaaa").name == "a"
    for header, code in ((None, "missing_api_key"), ("Bearer sk-aaaaaaab", "invalid_api_key"),
                         ("Basic sk-aaaaaaaa", "invalid_api_key")):
        with pytest.raises(APIError) as e:
            gate.authenticate(header)
        assert e.value.status == 401 and e.value.code == code
    assert Gate(None).authenticate(None).name == "local"   # no key file: no key needed


# ---- through a real server ----

def client(server, key):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)


def ask(c):
    return c.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "hi"}], temperature=0)


def test_keys_through_the_openai_client(keyed_server):
    missing = httpx.get(keyed_server.url + "/v1/models")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError) as e:
        client(keyed_server, "sk-test-wrong-key-000").models.list()
    assert e.value.body["code"] == "invalid_api_key"
    assert httpx.get(keyed_server.url + "/health").status_code == 200   # no key needed there
    ok = client(keyed_server, "sk-test-unlimited-0001")
    assert ask(ok).usage.completion_tokens <= 8


def test_rate_limit_and_budget_through_the_openai_client(keyed_server):
    slow = client(keyed_server, "sk-test-twoperminute-02")
    ask(slow), ask(slow)
    with pytest.raises(openai.RateLimitError) as e:
        ask(slow)
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 60 and e.value.body["code"] == "rate_limit_exceeded"
    budget = client(keyed_server, "sk-test-budget-00000003")
    ask(budget)   # under budget when it starts; it may end over it
    with pytest.raises(openai.RateLimitError) as e:
        ask(budget)
    assert e.value.body["code"] == "insufficient_quota"
    usage = httpx.get(keyed_server.url + "/v1/usage", headers={"Authorization": "Bearer sk-test-budget-00000003"}).json()
    assert usage["key"] == "budget" and usage["requests"] == 1 and usage["total_tokens"] > 1
    assert usage["remaining"]["tokens"] == 0 and usage["limits"]["token_budget"] == 1
