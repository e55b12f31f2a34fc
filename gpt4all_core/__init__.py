"""gpt4all-core: a local LLM inference engine for Python."""
from gpt4all_core.errors import GGUFError, GPT4AllCoreError, UnsupportedModelError

__version__ = "0.1.0"
__all__ = ["GGUFError", "GPT4AllCoreError", "UnsupportedModelError", "__version__"]
