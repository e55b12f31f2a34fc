"""Schemathesis fuzzes every operation of the OpenAPI schema the server publishes, with valid and
invalid requests: no answer may be a 5xx, and every error must be in OpenAI's shape. Bounded
examples per operation, and a server whose replies are at most 2 tokens, so it runs in seconds.

(schemathesis's own pytest plugin does not run under pytest 9, so the operations' hypothesis
strategies are driven directly.)"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
import httpx
from server_process import MODEL_ID, ServerProcess

EXAMPLES = 50  # per operation and mode


@pytest.fixture(scope="module")
def fuzz_server(smollm2_path, tmp_path_factory):
    s = ServerProcess(smollm2_path, "--parallel", "2", "--n-ctx", "256", "--max-tokens", "2",
                      log=tmp_path_factory.mktemp("fuzz") / "server.log")
    yield s
    s.stop()


def errors_are_openai_shaped(ctx, response, case):
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"]), body


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(fuzz_server, mode):
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                              "/v1/models", "/v1/models/{model_id}", "/v1/usage", "/health"}
    fuzzed = set()
    for op in operations:
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
                case.body["model"] = MODEL_ID   # past the 404 (tested elsewhere) into generation
            case.call_and_validate(base_url=fuzz_server.url, checks=[not_a_server_error, errors_are_openai_shaped],
                                   timeout=60)
        try:
            fuzz()
        except Unsatisfiable:  # nothing to make invalid: GET routes without parameters
            assert mode == GenerationMode.NEGATIVE and op.method.upper() == "GET"
            continue
        fuzzed.add(op.path)
    assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"} <= fuzzed
    if mode == GenerationMode.POSITIVE:  # valid requests got as far as the model
        assert httpx.get(fuzz_server.url + "/health").json()["stats"]["steps"] > 0
