"""Request bodies of the OpenAI API as pydantic models: what the server reads, and what its
published OpenAPI schema says.

Every model forbids unknown fields (a typo gets "Unrecognized request argument supplied: X"
rather than being ignored) and is strict about types (no "5" for 5). Optional fields default
to None so that an explicit null, which OpenAI's clients send, means "the default". Fields that
OpenAI has and this server does not do (tools, logit_bias, response_format with a schema, ...)
are declared, so the schema shows them, and refused with a 400 naming them (check_unsupported).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpt4all_core.server.errors import unsupported

MAX_N = 16          # choices per request
MAX_STOP = 4        # stop strings, as OpenAI
MAX_TOP_LOGPROBS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StreamOptions(_Strict):
    include_usage: bool | None = None


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    # what clients echo back from an assistant reply; refused when they carry something
    refusal: str | None = None
    tool_calls: list[Any] | None = None
    function_call: Any = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


Stop = str | list[str] | None


class _Sampling(_Strict):
    """The fields chat and text completions share: OpenAI's, then GPT4All's extras."""
    model: str
    max_tokens: int | None = Field(None, ge=0, description="most tokens to generate; default: until a stop or "
                                                             "the context is full")
    temperature: float | None = Field(None, ge=0, le=2, description="default 1; 0 is greedy")
    top_p: float | None = Field(None, ge=0, le=1, description="default 1 (off)")
    n: int | None = Field(None, ge=1, le=MAX_N)
    stop: Stop = Field(None, description=f"up to {MAX_STOP} strings that end the completion (not included)")
    seed: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None
    # GPT4All's extras
    top_k: int | None = Field(None, ge=0, description="GPT4All extra; default 0 (off)")
    min_p: float | None = Field(None, ge=0, le=1, description="GPT4All extra; default 0 (off)")
    repeat_penalty: float | None = Field(None, gt=0, le=10, description="GPT4All extra; default 1 (off)")
    repeat_last_n: int | None = Field(None, ge=-1, description="GPT4All extra; default 64, -1: the whole reply")
    # accepted, and without effect here
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    # OpenAI's, refused (check_unsupported)
    logit_bias: dict[str, Any] | None = None

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    localdocs: list[str] | None = Field(None, description="GPT4All extra: LocalDocs collections whose snippets "
                                        "nearest the last user message go before it; the answer's choices "
                                        "then carry their references")
    max_completion_tokens: int | None = Field(None, ge=0, description="OpenAI's newer name for max_tokens")
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: Any = None
    prediction: Any = None
    reasoning_effort: Any = None


Prompt = str | list[str] | list[int] | list[list[int]]


class CompletionRequest(_Sampling):
    prompt: Prompt
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    echo: bool | None = None
    best_of: int | None = Field(None, ge=1, le=MAX_N)
    suffix: str | None = None


class EmbeddingRequest(_Strict):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


def check_unsupported(req: BaseModel) -> None:
    """A 400 naming the first field this server does not honour, when a request sets one."""
    def is_set(name: str) -> bool:
        return getattr(req, name, None) not in (None, [], {})

    for name in ("tools", "functions", "function_call", "logit_bias", "audio", "prediction", "suffix"):
        if is_set(name):
            raise unsupported(name)
    if getattr(req, "tool_choice", None) not in (None, "none"):
        raise unsupported("tool_choice", " (no tools)")
    fmt = getattr(req, "response_format", None)
    if fmt and fmt.get("type") != "text":
        raise unsupported("response_format", ": only {\"type\": \"text\"}")
    if getattr(req, "modalities", None) not in (None, ["text"]):
        raise unsupported("modalities", ": text only")
    if getattr(req, "reasoning_effort", None) is not None:
        raise unsupported("reasoning_effort")
    if getattr(req, "best_of", None) not in (None, 1):
        raise unsupported("best_of", ": only 1")
    for i, m in enumerate(getattr(req, "messages", None) or []):
        if m.tool_calls or m.function_call:
            raise unsupported(f"messages[{i}].tool_calls", " (no tools)")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
