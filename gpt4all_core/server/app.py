"""The OpenAI-compatible HTTP API: a FastAPI app over one model, its BatchEngine, keys and CORS.

    app = create_app(ServerConfig(model_path="SmolLM2-135M-Instruct.Q4_1.gguf", n_parallel=4))
    uvicorn.run(app, host="127.0.0.1", port=4891)

The engine thread starts and stops with the app (its lifespan). Route handlers only orchestrate:
tokenizing, queueing jobs and turning events into JSON run on the event loop; the forward
passes run on the engine thread with the GIL released.
"""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from gpt4all_core import __version__, models
from gpt4all_core.engine.batch import BatchEngine
from gpt4all_core.server import errors
from gpt4all_core.server.auth import ApiKey, Gate, load_keys
from gpt4all_core.server.completions import Generator, chat_completion, completion
from gpt4all_core.server.embeddings import Embedder, EmbeddingService
from gpt4all_core.server.errors import APIError, model_not_found
from gpt4all_core.server.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ErrorResponse


@dataclass
class ServerConfig:
    """What `gpt4all-core serve` sets. n_ctx is per slot: the cache holds n_parallel * n_ctx tokens."""
    model_path: str
    model_id: str | None = None          # default: the file name
    n_parallel: int = 1                  # slots decoding together
    n_ctx: int = 2048
    n_batch: int = 128                   # tokens per forward pass
    n_threads: int | None = None
    max_queue: int = 64                  # requests waiting for a slot before 503
    max_tokens: int | None = None        # cap on any request's max_tokens (None: the context)
    api_key_file: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = 4 << 20
    chat_template: str | None = None     # Jinja source overriding the GGUF's
    embedder: Embedder | None = None
    localdocs: list[str] = field(default_factory=list)  # collections for chats that name none
    localdocs_db: Any = None             # a LocalDocs, a database path, or None for the default database
    device: Any = None                   # a vulkan.devices.DeviceInfo (select_device), None for the CPU
    ngl: int = 100                       # blocks on that device


class _BodyTooLarge(StarletteHTTPException):
    def __init__(self):
        super().__init__(413)


class BodyLimit:
    """413 for a body over max_bytes: at once from Content-Length, or while a chunked body arrives."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            err = APIError(413, f"Request body too large: at most {self.max_bytes} bytes.", code="body_too_large")
            return await err.response()(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        await self.app(scope, limited, send)


_ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in (
    (400, "invalid request (named field)"), (401, "missing or wrong API key"), (404, "unknown model"),
    (413, "body too large"), (429, "rate limit or token budget reached (Retry-After)"),
    (503, "every slot busy and the queue full (Retry-After)"))}


def create_app(config: ServerConfig, model=None) -> FastAPI:
    """The app for config; model: an already loaded one (else config.model_path is loaded)."""
    keys = load_keys(config.api_key_file) if config.api_key_file else None
    gate = Gate(keys)
    if model is None:
        model = models.load(config.model_path, device=config.device, ngl=config.ngl)
    model_id = config.model_id or Path(config.model_path).name
    engine = BatchEngine(model, n_slots=config.n_parallel, n_ctx=config.n_ctx, n_batch=config.n_batch,
                         n_threads=config.n_threads, max_queue=config.max_queue)
    gen = Generator(model, model_id, engine, config.chat_template, config.max_tokens, config.localdocs,
                    config.localdocs_db)
    embeddings = EmbeddingService(config.embedder)
    try:
        created = int(os.path.getmtime(config.model_path))
    except OSError:
        created = 0

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine.start()
        try:
            yield
        finally:
            engine.stop()

    app = FastAPI(title="gpt4all-core", version=__version__, lifespan=lifespan,
                  description="OpenAI-compatible API over a local GGUF model (gpt4all-core serve).")
    app.state.engine, app.state.gate, app.state.generator = engine, gate, gen
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    if config.cors_origins:  # added last: outermost, so that error responses carry the headers too
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["*"], max_age=600)

    bearer = HTTPBearer(auto_error=False, description="an API key from the server's key file")

    async def key_of(request: Request, _=Depends(bearer)) -> ApiKey:
        return gate.authenticate(request.headers.get("authorization"))

    def model_object(mid: str) -> dict:
        return {"id": mid, "object": "model", "created": created, "owned_by": "gpt4all-core"}

    served = [model_id] + ([config.embedder.model_id] if config.embedder is not None else [])

    @app.get("/health", tags=["server"])
    async def health():
        return {"status": "ok", "model": model_id, "slots": engine.n_slots, "busy_slots": engine.busy_slots,
                "queued": engine.queued, "n_ctx": engine.n_ctx, "stats": dict(engine.stats)}

    @app.get("/v1/models", tags=["models"], responses=_ERRORS)
    async def list_models(key: ApiKey = Depends(key_of)):
        return {"object": "list", "data": [model_object(m) for m in served]}

    @app.get("/v1/models/{model_id:path}", tags=["models"], responses=_ERRORS)
    async def get_model(model_id: str, key: ApiKey = Depends(key_of)):
        if model_id not in served:
            raise model_not_found(model_id)
        return model_object(model_id)

    @app.post("/v1/chat/completions", tags=["generation"], responses=_ERRORS)
    async def chat(req: ChatCompletionRequest, request: Request, key: ApiKey = Depends(key_of)):
        return await chat_completion(gen, req, key, gate, request)

    @app.post("/v1/completions", tags=["generation"], responses=_ERRORS)
    async def complete(req: CompletionRequest, request: Request, key: ApiKey = Depends(key_of)):
        return await completion(gen, req, key, gate, request)

    @app.post("/v1/embeddings", tags=["embeddings"], responses=_ERRORS)
    async def embed(req: EmbeddingRequest, key: ApiKey = Depends(key_of)):
        return await embeddings.handle(req, key, gate)

    @app.get("/v1/usage", tags=["server"], responses=_ERRORS)
    async def usage(key: ApiKey = Depends(key_of)):
        return JSONResponse(gate.usage(key))

    def openapi():
        # validation errors answer 400 in OpenAI's shape, not FastAPI's 422
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for path in schema.get("paths", {}).values():
                for op in path.values():
                    op.get("responses", {}).pop("422", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app
