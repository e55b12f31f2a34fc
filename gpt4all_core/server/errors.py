"""Errors in OpenAI's shape, whatever raised them: {"error": {"message", "type", "param", "code"}}.

OpenAI's clients read `type` and `code` (the `openai` package turns the status into its exception
classes: 400 BadRequestError, 401 AuthenticationError, 404 NotFoundError, 429 RateLimitError...),
so every path out of the server, FastAPI's validation and Starlette's routing included, goes
through here. A 500 carries a generic message; the trace goes to the log, never to the client.
"""
from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpt4all_core.errors import GPT4AllCoreError

log = logging.getLogger("gpt4all_core.server")

INVALID_REQUEST = "invalid_request_error"


class APIError(GPT4AllCoreError):
    """An error the server answers with: HTTP status plus OpenAI's error fields."""

    def __init__(self, status: int, message: str, type: str = INVALID_REQUEST, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def unsupported(param: str, why: str = "") -> APIError:
    return APIError(400, f"'{param}' is not supported by this server{why}", param=param, code="unsupported_parameter")


def model_not_found(model: str) -> APIError:
    return APIError(404, f"The model `{model}` does not exist or you do not have access to it.", param="model",
                    code="model_not_found")


def _loc(loc: tuple) -> str:
    """pydantic's location, less the 'body' prefix: messages.0.content -> messages[0].content."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _unknown_field(errors: list[dict]) -> dict | None:
    return next((e for e in errors if e.get("type") == "extra_forbidden"), None)


def validation_error(errors: list[dict]) -> APIError:
    """FastAPI/pydantic's list of errors as one OpenAI-style 400 naming the first field at fault
    (unknown fields first, in GPT4All's words, since a typo is the likeliest cause)."""
    extra = _unknown_field(errors)
    if extra is not None:
        name = _loc(extra["loc"])
        return bad_request(f"Unrecognized request argument supplied: {name}", param=name)
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") in ("json_invalid", "json_type") or first.get("loc") in (("body",), ()):
        if first.get("type") == "missing":
            return bad_request("The request body is missing: send a JSON object")
        return bad_request("We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                           "using your HTTP library correctly. The OpenAI API expects a JSON payload.)")
    name = _loc(first["loc"])
    if first.get("type") == "missing":
        return bad_request(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    return bad_request(f"Invalid value for '{name}': {first.get('msg', 'invalid')}.", param=name,
                       code="invalid_value")


_STATUS_TEXT = {404: "Invalid URL", 405: "Method not allowed", 413: "Request body too large"}


def install(app: FastAPI) -> None:
    """Every error the app can produce, answered in OpenAI's shape."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if not (kind == "application/json" or kind.endswith("+json")):  # FastAPI then never parsed the body
            return bad_request(f"Content-Type must be application/json, not {kind}").response()
        return validation_error(list(exc.errors())).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # routing (404 unknown route, 405 wrong method) and anything else Starlette raises
        text = _STATUS_TEXT.get(exc.status_code, exc.detail if isinstance(exc.detail, str) else "error")
        message = f"{text} ({request.method} {request.url.path})" if exc.status_code in (404, 405) else text
        code = {404: "unknown_url", 405: "method_not_allowed"}.get(exc.status_code)
        return APIError(exc.status_code, message, code=code, headers=dict(exc.headers or {})).response()

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return APIError(500, "The server had an error while processing your request.", type="server_error").response()


def sse_error(err: APIError) -> str:
    """An error after a stream has begun (the status is sent already): OpenAI's clients raise on a
    data line that holds an error object."""
    return json.dumps(err.body())
