"""Model architectures read from GGUF files; load(path) picks the class by general.architecture."""
from __future__ import annotations

import os

from gpt4all_core import gguf
from gpt4all_core.errors import UnsupportedModelError
from gpt4all_core.models.base import Model, ModelFileError
from gpt4all_core.models.bert import ARCHITECTURES as BERT_ARCHITECTURES
from gpt4all_core.models.bert import BertModel
from gpt4all_core.models.gemma3 import ARCHITECTURES as GEMMA3_ARCHITECTURES
from gpt4all_core.models.gemma3 import Gemma3Model
from gpt4all_core.models.llama import ARCHITECTURES as LLAMA_ARCHITECTURES
from gpt4all_core.models.llama import LlamaModel

MODEL_CLASSES: dict[str, type[Model]] = {arch: LlamaModel for arch in LLAMA_ARCHITECTURES}
MODEL_CLASSES.update({arch: Gemma3Model for arch in GEMMA3_ARCHITECTURES})
MODEL_CLASSES.update({arch: BertModel for arch in BERT_ARCHITECTURES})

__all__ = ["MODEL_CLASSES", "Model", "ModelFileError", "load"]


def load(path: str | os.PathLike, device=None, ngl: int = 100) -> Model:
    """The model in a GGUF file. FileNotFoundError if there is no file; UnsupportedModelError naming
    the architecture if we do not run it. device: None (the CPU), a device request string ("gpu",
    "kompute:<name>", ...: see backend.vulkan.devices) or a DeviceInfo; ngl: how many blocks run
    on that device (all, and the output head, when ngl >= the number of blocks)."""
    if isinstance(device, str):
        from gpt4all_core.backend.vulkan.devices import select_device
        device = select_device(device)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    f = gguf.open(path)
    arch = f.get("general.architecture")
    cls = MODEL_CLASSES.get(arch)
    if cls is None:
        f.close()
        raise UnsupportedModelError(f"{path}: architecture {arch!r} is not supported "
                                    f"(supported: {', '.join(sorted(MODEL_CLASSES))})")
    return cls(path, f, device=device, ngl=ngl)
