"""The OpenAI-compatible HTTP API (`gpt4all-core serve`): app.create_app builds the FastAPI app
over one model and a continuous-batching engine (gpt4all_core.engine.batch)."""
from gpt4all_core.server.app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
