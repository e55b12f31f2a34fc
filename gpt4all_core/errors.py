"""The one exception family of gpt4all-core.

Every error that bad input can cause is one of these, with a message that
names the file, key, tensor or parameter at fault.
"""
from __future__ import annotations


class GPT4AllCoreError(Exception):
    """Root of every error gpt4all-core raises on purpose."""


class GGUFError(GPT4AllCoreError, ValueError):
    """A GGUF file is malformed, hostile or uses something we do not know.

    ``path``, ``offset`` and ``field`` say where: the file, the byte offset
    where the bad field starts, and what that field is.
    """

    def __init__(self, message: str, *, path=None, offset: int | None = None, field: str | None = None):
        self.path = None if path is None else str(path)
        self.offset = offset
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if offset is not None:
            where.append(f"offset {offset}")
        if field is not None:
            where.append(field)
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class UnsupportedModelError(GPT4AllCoreError):
    """A model file is valid but uses an architecture or feature we do not run."""


class TokenizerError(GPT4AllCoreError, ValueError):
    """A tokenizer's vocabulary in a GGUF file is missing pieces or contradicts itself."""


class ConversionError(GPT4AllCoreError, ValueError):
    """A model folder cannot be converted to GGUF: a file is missing or unreadable, or it holds a
    tensor or setting the converter does not know. The message names the file and the key or tensor."""


class EmbeddingError(GPT4AllCoreError, RuntimeError, ValueError):
    """Embed4All refused its input (a prefix or dimensionality the model does not take, a text
    too long for atlas mode). A RuntimeError as the gpt4all package raises it, and a ValueError."""


class CancellationError(GPT4AllCoreError):
    """Embed4All's cancel_cb asked to stop (gpt4all.CancellationError)."""


class ModelNotFoundError(GPT4AllCoreError, FileNotFoundError):
    """A model is neither on disk nor anywhere it can be made from or fetched from (the catalog, a
    Hugging Face repository); the message says how to get it. A FileNotFoundError too, as the
    `gpt4all` package raises for a missing model file."""


class DownloadError(GPT4AllCoreError):
    """Fetching a model or catalog failed: no network, an HTTP error, a full disk.

    ``url`` is what was being fetched, ``path`` where it was going (either may be None)."""

    def __init__(self, message: str, *, url: str | None = None, path=None):
        self.url = url
        self.path = None if path is None else str(path)
        super().__init__(message)


class AuthenticationError(DownloadError):
    """The server wants a token (a gated or private Hugging Face repository) and none or a
    wrong one was sent."""


class ChecksumError(DownloadError):
    """A downloaded file's checksum differs from the one the catalog or the Hub states.

    ``algorithm`` ('sha256' or 'md5'), ``expected`` and ``actual`` are hex digests."""

    def __init__(self, message: str, *, algorithm: str, expected: str, actual: str, url: str | None = None,
                 path=None):
        self.algorithm, self.expected, self.actual = algorithm, expected, actual
        super().__init__(message, url=url, path=path)


class DownloadCancelled(DownloadError):
    """A download was cancelled (cancel() or Ctrl-C); its ``.part`` file is kept to resume from."""


class LocalDocsError(GPT4AllCoreError, ValueError):
    """A LocalDocs request names a collection that does not exist, a folder that is not one, or a
    database made with another embedding model; the message names it."""


class DeviceError(GPT4AllCoreError, ValueError):
    """A device request (GPT4All(device=...), --device) names no device that can run the model: an
    unknown string, a device that is not there or lacks what the shaders need, a backend this build
    does not have. The message names the request and lists the Vulkan devices there are (or says
    that there is no Vulkan loader or device). A ValueError, as the gpt4all package raises."""
