"""gpt4all-core: a local LLM inference engine for Python.

    from gpt4all_core import GPT4All, Embed4All   # the gpt4all package's API
"""
from gpt4all_core.errors import CancellationError, GGUFError, GPT4AllCoreError, UnsupportedModelError

__version__ = "0.1.0"
_API = ("GPT4All", "Embed4All", "load_model", "create_completion", "create_embedding")
__all__ = ["CancellationError", "GGUFError", "GPT4AllCoreError", "UnsupportedModelError", "__version__", *_API]


def __getattr__(name: str):
    # the API pulls in the kernels and models; `import gpt4all_core` alone stays light
    if name in _API:
        from gpt4all_core import api
        return getattr(api, name)
    raise AttributeError(f"module 'gpt4all_core' has no attribute {name!r}")
