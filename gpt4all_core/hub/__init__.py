"""Getting models: references, GPT4All's catalog, downloads, remote headers, memory estimates.

    from gpt4all_core import hub
    hub.list_models()                                          # GPT4All's models3.json catalog
    path = hub.resolve_model_file("hf:user/repo:Q4_K_M")       # on disk, or downloaded (resumable)
    ctl = hub.download_model("Llama-3.2-1B-Instruct-Q4_0.gguf", progress=print)
    ctl.cancel(); ctl.future.result()                          # the .part is kept to resume

References are described in refs.py; HF_ENDPOINT, HF_TOKEN (or ~/.cache/huggingface/token),
GPT4ALL_MODEL_DIR and GPT4ALL_CATALOG_URL are read at each call.
"""
from gpt4all_core.hub.catalog import find_model, list_models, load_catalog
from gpt4all_core.hub.download import DEFAULT_CONNECTIONS, Downloader, FileTask
from gpt4all_core.hub.refs import ModelRef, parse_reference, split_parts
from gpt4all_core.hub.resolve import (DownloadController, download_model, local_file, models_dir, parse, plan,
                                      resolve_model_file, retrieve_model)

__all__ = [
    "DEFAULT_CONNECTIONS", "DownloadController", "Downloader", "FileTask", "ModelRef", "download_model",
    "find_model", "list_models", "load_catalog", "local_file", "models_dir", "open_headers", "parse",
    "parse_reference", "plan", "resolve_model_file", "retrieve_model", "split_parts",
]


def open_headers(uri, directory=None, all_parts: bool = True):
    """GGUF headers of a model reference: its local file(s), or read over HTTP (only the header's
    bytes, through Range requests) when it is not downloaded. Close each when done."""
    from gpt4all_core.hub import remote
    ref = parse(uri)
    folder = models_dir(directory)
    local = local_file(ref, folder)
    if local is None and ref.kind == "path":
        from gpt4all_core.errors import ModelNotFoundError
        raise ModelNotFoundError(f"model file not found: {ref.path}")
    return remote.open_headers(ref, local, lambda: plan(ref, folder), all_parts)
