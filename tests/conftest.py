"""Shared fixtures: the real model files that ./dev.sh test fetches from PyPI packages."""
from __future__ import annotations

from pathlib import Path

import pytest
from fixture_paths import MODEL_DIR, TEST_DATA, need


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return need(MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def gemma3_path() -> Path:
    return need(TEST_DATA / "gemma-3-270m-q4_k_m.gguf")


@pytest.fixture(scope="session")
def minilm_gguf(tmp_path_factory):
    """minilm_gguf(type="f16", pooling=None) -> our conversion of all-MiniLM-L6-v2 ("f32", "f16",
    "q8_0"; pooling None keeps the folder's mean), each made once per session in a temporary folder."""
    from bert_files import MINILM_NAME, minilm_folder

    from gpt4all_core.convert import convert

    folder, made = tmp_path_factory.mktemp("minilm"), {}

    def get(kind: str = "f16", pooling: str | None = None) -> Path:
        if (kind, pooling) not in made:
            out = folder / f"{MINILM_NAME}.{kind}{'.' + pooling if pooling else ''}.gguf"
            made[kind, pooling] = convert(minilm_folder(), out, kind, pooling=pooling, name=MINILM_NAME)
        return made[kind, pooling]

    return get


def vocab_files() -> list[Path]:
    """llama.cpp's vocab-only GGUF files (collected at import for parametrize)."""
    return sorted((TEST_DATA / "llama.cpp-models").glob("ggml-vocab-*.gguf"))


def real_gguf_files() -> list[Path]:
    """Every real GGUF file of ../shared/MODELS.md: SmolLM2, Gemma 3, llama.cpp's vocab files."""
    vocab = vocab_files() or [TEST_DATA / "llama.cpp-models" / "ggml-vocab-*.gguf (none found)"]
    return [MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf", TEST_DATA / "gemma-3-270m-q4_k_m.gguf", *vocab]


@pytest.fixture
def real_gguf(request) -> Path:
    return need(request.param)


def pytest_generate_tests(metafunc):
    if "real_gguf" in metafunc.fixturenames:
        files = real_gguf_files()
        metafunc.parametrize("real_gguf", files, ids=[f.name for f in files], indirect=True)


@pytest.fixture(scope="session")
def vocab_paths() -> list[Path]:
    """llama.cpp's vocab files; fewer than MODELS.md's 15 tokenizers means the fixtures are broken."""
    paths = vocab_files()
    if len(paths) < 15:
        pytest.fail(f"only {len(paths)} llama.cpp vocab files found: run ./dev.sh test")
    return paths


# Lines that tests add to the end-of-run summary (e.g. logits differences against llama.cpp per file).
from summary_report import REPORT  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("measured against references")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True, scope="session")
def _no_model_hub():
    """No test reaches the internet. Model names that are not on disk would make the API look them
    up in GPT4All's live catalog or on the Hub, so both point at a closed local port unless a test
    starts its own server (tests/support/fake_hub.py); and the hub's HTTP client refuses any host
    but this machine, so that a URL from the bundled catalog cannot slip out either."""
    import httpx

    from gpt4all_core.hub import http

    class LoopbackOnly(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host not in ("127.0.0.1", "localhost", "::1"):
                raise httpx.ConnectError(f"tests may not reach {request.url.host}", request=request)
            return super().handle_request(request)

    real_client = http.client
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPT4ALL_CATALOG_URL", "http://127.0.0.1:9/models3.json")
        mp.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
        mp.setattr(http, "client", lambda **kw: real_client(transport=LoopbackOnly(), **kw))
        yield
