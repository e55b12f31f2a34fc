"""GGUF, read and written by us: ``gguf.open(path)`` and ``GGUFWriter``."""
from gpt4all_core.gguf.reader import GGUFFile, Tensor, open
from gpt4all_core.gguf.types import (
    TYPE_TRAITS,
    ArrayType,
    GGMLType,
    GGUFValueType,
    row_nbytes,
    tensor_nbytes,
)
from gpt4all_core.gguf.writer import GGUFWriter

__all__ = [
    "TYPE_TRAITS", "ArrayType", "GGMLType", "GGUFFile", "GGUFValueType", "GGUFWriter", "Tensor",
    "open", "row_nbytes", "tensor_nbytes",
]
