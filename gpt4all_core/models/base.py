"""What every architecture shares: the GGUF file, hyper-parameter and tensor lookups with errors
that name the key or tensor, the tokenizer, and the decoder that runs a batch over a KV cache."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gpt4all_core import gguf
from gpt4all_core.backend import cpu_kernels
from gpt4all_core.errors import GGUFError
from gpt4all_core.tokenizer import Tokenizer

_MISSING = object()


class ModelFileError(GGUFError):
    """A GGUF file lacks a key or tensor its architecture needs, or has one of the wrong shape."""

    def __init__(self, path, message: str, field: str | None = None):
        super().__init__(message, path=path, field=field)


class Model:
    """A model loaded from a GGUF file. Subclasses fill hparams and decoder in _build()."""

    def __init__(self, path: str | os.PathLike, gguf_file: gguf.GGUFFile | None = None, device=None,
                 ngl: int = 100):
        self.path = Path(path)
        self.device_info = device  # a vulkan.devices.DeviceInfo, or None for the CPU
        self.ngl = ngl
        self.gguf = gguf_file if gguf_file is not None else gguf.open(self.path)
        try:
            self.architecture: str = self.gguf.get("general.architecture") or ""
            self.name: str = self.gguf.get("general.name") or self.path.stem
            self.hparams: dict = {}
            self._build()
            self.tokenizer = Tokenizer.from_gguf(self.gguf)
            if len(self.tokenizer) != self.n_vocab:
                raise ModelFileError(self.path, f"the tokenizer has {len(self.tokenizer)} tokens, the embedding "
                                     f"table {self.n_vocab} rows", "tokenizer.ggml.tokens")
        except BaseException:
            self.gguf.close()
            raise

    def _build(self) -> None:
        raise NotImplementedError

    # ---- lookups ----

    def _key(self, name: str, kind: type, default=_MISSING):
        """The architecture's hyper-parameter `{arch}.{name}`, checked to be of kind."""
        key = f"{self.architecture}.{name}"
        value = self.gguf.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise ModelFileError(self.path, "missing, and the architecture needs it", key)
            return default
        try:
            if kind is int and (isinstance(value, float) or isinstance(value, bool)):
                raise TypeError
            return kind(value)
        except (TypeError, ValueError):
            raise ModelFileError(self.path, f"expected a {kind.__name__}, found {value!r}", key) from None

    def _tensor(self, name: str, shape: tuple[int, ...]):
        """(data, ggml type) of a weight matrix, its shape checked (numpy order: rows, row length)."""
        t = self.gguf.tensors.get(name)
        if t is None:
            raise ModelFileError(self.path, "tensor missing", name)
        if tuple(t.shape) != tuple(shape):
            raise ModelFileError(self.path, f"tensor has shape {t.shape}, expected {shape}", name)
        if int(t.type) not in _WEIGHT_TYPES:
            raise ModelFileError(self.path, f"tensor type {t.type.name} is not one the kernels read", name)
        return t.data, int(t.type)

    def _vector(self, name: str, n: int) -> np.ndarray:
        """A float32 vector (norm weights, biases), widened from F16 if stored so (it is small)."""
        t = self.gguf.tensors.get(name)
        if t is None:
            raise ModelFileError(self.path, "tensor missing", name)
        if t.n_elements != n:
            raise ModelFileError(self.path, f"tensor has {t.n_elements} values, expected {n}", name)
        if int(t.type) == 0:
            return t.data.reshape(-1)
        return cpu_kernels.dequantize(t.data.reshape(1, -1).view(np.uint8), int(t.type)).reshape(-1)

    def _make_decoder(self, hparams: dict, globals: dict, blocks: list):
        """The decoder on the CPU, or on the Vulkan device asked for (ngl blocks offloaded, all of
        them and the output head when ngl >= the number of blocks)."""
        self._decoder_args = (hparams, globals, blocks)  # to build the decoder again elsewhere (tests)
        if self.device_info is None or self.ngl <= 0:
            return cpu_kernels.Decoder(hparams, globals, blocks)
        from gpt4all_core.backend.vulkan.decoder import make_decoder
        return make_decoder(hparams, globals, blocks, self.device_info, self.ngl)

    # ---- running ----

    @property
    def n_vocab(self) -> int:
        return self.decoder.n_vocab

    @property
    def n_ctx_train(self) -> int:
        return int(self.hparams.get("n_ctx_train", 2048))

    @property
    def chat_template(self) -> str | None:
        return self.gguf.get("tokenizer.chat_template")

    def new_cache(self, n_ctx: int, f16: bool = True):
        if isinstance(self.decoder, cpu_kernels.Decoder):
            return cpu_kernels.KVCache(self.decoder, n_ctx, f16)
        return self.decoder.new_cache(n_ctx, f16)

    def close(self) -> None:
        """Frees the decoder and closes the file (the mmap goes once no array points into it)."""
        self.decoder = None
        self.gguf.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.architecture} {self.name!r} from {self.path}>"



def _weight_types() -> frozenset[int]:
    """GGML type ids the kernels multiply by."""
    ids = set()
    for i in range(64):
        try:
            if cpu_kernels.type_info(i)["is_weight_type"]:
                ids.add(i)
        except ValueError:
            pass
    return frozenset(ids)


_WEIGHT_TYPES = _weight_types()
