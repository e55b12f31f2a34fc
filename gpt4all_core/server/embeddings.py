"""POST /v1/embeddings, through a pluggable embedder.

The server does not build embeddings itself: it calls an Embedder, anything with a `model_id`
and `embed(texts, dimensions) -> (vectors, n_prompt_tokens)`. `gpt4all-core serve
--embedding-model FILE` wraps gpt4all's Embed4All API (`embed(texts, dimensionality=...,
return_dict=True)` -> {"embeddings", "n_prompt_tokens"}); tests and programs may pass their own
to create_app. Without one, the endpoint answers 400 `no_embedding_model`.
"""
from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
from starlette.responses import JSONResponse

from gpt4all_core.server.auth import ApiKey, Gate
from gpt4all_core.server.compute import in_own_thread
from gpt4all_core.server.errors import APIError, bad_request, model_not_found, unsupported
from gpt4all_core.server.schemas import EmbeddingRequest


class Embedder(Protocol):
    model_id: str

    def embed(self, texts: list[str], dimensions: int | None) -> tuple[list[list[float]], int]:
        """One vector per text, and the number of tokens read. ValueError for a bad argument
        (named), e.g. dimensions the model cannot give."""


class Embed4AllEmbedder:
    """An Embedder over gpt4all_core.Embed4All (gpt4all's API)."""

    def __init__(self, path: str | Path, n_threads: int | None = None):
        from gpt4all_core.api import Embed4All
        self.model_id = Path(path).name
        self._model = Embed4All(str(path), n_threads=n_threads)

    def embed(self, texts: list[str], dimensions: int | None) -> tuple[list[list[float]], int]:
        out = self._model.embed(texts, dimensionality=dimensions, return_dict=True)
        return out["embeddings"], int(out["n_prompt_tokens"])


class EmbeddingService:
    def __init__(self, embedder: Embedder | None):
        self.embedder = embedder
        self._lock = threading.Lock()  # one batch at a time: the model's threads already use the cores

    def _embed(self, texts: list[str], dimensions: int | None):
        with self._lock:
            return self.embedder.embed(texts, dimensions)

    async def handle(self, req: EmbeddingRequest, key: ApiKey, gate: Gate) -> JSONResponse:
        if self.embedder is None:
            raise bad_request("No embedding model is loaded: start the server with --embedding-model FILE.",
                              param="model", code="no_embedding_model")
        if req.model != self.embedder.model_id:
            raise model_not_found(req.model)
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts:
            raise bad_request("'input' must not be empty", param="input")
        if not all(isinstance(t, str) for t in texts):
            raise unsupported("input", ": send text, not token ids")
        gate.admit(key)
        try:
            vectors, n_tokens = await in_own_thread(self._embed, texts, req.dimensions)  # compute.py: why
        except ValueError as e:
            raise bad_request(str(e), param="dimensions" if req.dimensions else "input") from None
        gate.record(key, n_tokens, 0)
        as_base64 = req.encoding_format == "base64"
        data = []
        for i, v in enumerate(vectors):
            vec = np.asarray(v, dtype="<f4")
            data.append({"object": "embedding", "index": i,
                         "embedding": base64.b64encode(vec.tobytes()).decode() if as_base64 else vec.tolist()})
        if len(data) != len(texts):
            raise APIError(500, "the embedding model returned a wrong number of vectors", type="server_error")
        return JSONResponse({"object": "list", "data": data, "model": self.embedder.model_id,
                             "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}})
