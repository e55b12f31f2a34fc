"""Model references: the one string a user names a model with, parsed once.

    /models/x.gguf, ./x.gguf, ~/x.gguf      a file on disk
    Llama-3.2-1B-Instruct-Q4_0.gguf         a GPT4All catalog name (or any file name), looked up in the
                                            models folder (~/.cache/gpt4all), '.gguf' added when missing
    hf:<user>/<repo>[:<quant>][#<branch>]   a Hugging Face repository; the quant (Q4_K_M, Q8_0...) picks
                                            the file, Q4_K_M by default as llama.cpp's -hf does
    hf:<user>/<repo>/<path>[#<branch>]      one file of a repository
    https://host/path/file.gguf             a plain URL (one on the Hub's /resolve/ is read as hf:)
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

HF_PREFIX = "hf:"
DEFAULT_REVISION = "main"
DEFAULT_QUANTS = ("Q4_K_M", "Q4_0")  # hf:user/repo without a quant: llama.cpp's default, then GPT4All's
MODEL_EXTENSIONS = (".gguf", ".bin")
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# A split model's parts: name-00001-of-00003.gguf (llama.cpp's gguf-split naming)
SPLIT_RE = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference. ``kind`` is 'path', 'name' (catalog or models-folder file name),
    'hf' or 'url'; the other fields are set as the kind needs them."""

    kind: str
    text: str
    path: Path | None = None
    name: str | None = None
    repo: str | None = None
    quant: str | None = None
    file: str | None = None
    revision: str = DEFAULT_REVISION
    url: str | None = None

    def __str__(self) -> str:
        return self.text


def parse_reference(ref: str | os.PathLike, hf_endpoint: str | None = None) -> ModelRef:
    """Parses a model reference; ValueError names what is wrong with a malformed one."""
    if isinstance(ref, ModelRef):
        return ref
    if isinstance(ref, os.PathLike):
        return ModelRef("path", os.fspath(ref), path=Path(ref).expanduser())
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"a model reference must be a non-empty string or path, not {ref!r}")
    text = ref.strip()
    if text.startswith(HF_PREFIX):
        return _parse_hf(text)
    if re.match(r"^https?://", text, re.IGNORECASE):
        return _parse_url(text, hf_endpoint)
    path = Path(text).expanduser()
    if path.exists() or os.sep in text or "/" in text or text.startswith(("~", ".")) or path.is_absolute():
        return ModelRef("path", text, path=path)
    name = text if text.endswith(MODEL_EXTENSIONS) else text + ".gguf"
    return ModelRef("name", text, name=name)


def _parse_hf(text: str) -> ModelRef:
    body = text[len(HF_PREFIX):].lstrip("/")
    body, hash_, revision = body.partition("#")
    if hash_ and not revision:
        raise ValueError(f"{text!r}: nothing after '#' (expected a branch, tag or commit)")
    segments = body.split("/")
    if len(segments) < 2 or not segments[0] or not segments[1]:
        raise ValueError(f"{text!r}: expected hf:<user>/<repo>[:<quant>] or hf:<user>/<repo>/<file>")
    user, repo_part, rest = segments[0], segments[1], segments[2:]
    quant = None
    if not rest:
        repo_part, colon, quant = repo_part.partition(":")
        if colon and not quant:
            raise ValueError(f"{text!r}: nothing after ':' (expected a quantization such as Q4_K_M)")
    for part, what in ((user, "user"), (repo_part, "repository")):
        if not _REPO_PART.match(part):
            raise ValueError(f"{text!r}: {what} name {part!r} has characters the Hub does not allow")
    file = "/".join(rest) if rest else None
    if file is not None and (not all(rest) or ".." in rest):
        raise ValueError(f"{text!r}: file path {file!r} is not a clean path inside the repository")
    return ModelRef("hf", text, repo=f"{user}/{repo_part}", quant=quant or None, file=file,
                    revision=revision or DEFAULT_REVISION)


def safe_filename(name: str, source: str) -> str:
    """name, if it is a plain file name: a downloaded file's name comes from a URL, a catalog or a
    repository listing, and must not climb out of the models folder ('..', '%2F')."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"{source}: {name!r} is not a plain file name")
    return name


def _parse_url(text: str, hf_endpoint: str | None) -> ModelRef:
    parts = urlsplit(text)
    filename = unquote(parts.path.rsplit("/", 1)[-1])
    if not filename:
        raise ValueError(f"{text!r}: the URL does not end in a file name")
    safe_filename(filename, text)
    endpoint = urlsplit(hf_endpoint) if hf_endpoint else None
    if endpoint is not None and (parts.scheme, parts.netloc) == (endpoint.scheme, endpoint.netloc):
        # https://huggingface.co/<user>/<repo>/resolve/<rev>/<path>: the Hub states a sha256 for it
        m = re.match(r"^/([^/]+)/([^/]+)/(?:resolve|blob)/([^/]+)/(.+)$", parts.path)
        if m and not parts.query:
            return ModelRef("hf", text, repo=f"{m[1]}/{m[2]}", file=unquote(m[4]), revision=unquote(m[3]), url=text)
    return ModelRef("url", text, name=filename, url=text)


def split_parts(name: str) -> list[str] | None:
    """All part names of a split GGUF from any one part's name, or None for a single file."""
    m = SPLIT_RE.match(name)
    if m is None:
        return None
    count = int(m["count"])
    if count < 1 or int(m["index"]) > count:
        raise ValueError(f"{name!r}: part {int(m['index'])} of {count} is not a valid split file name")
    return [f"{m['stem']}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]


def quant_matches(path: str, quant: str) -> bool:
    """Whether a repository file's path names the quantization (Q4_K_M matches
    'Model-Q4_K_M.gguf', 'model.q4_k_m.gguf' and 'Q4_K_M/Model-00001-of-00002.gguf', not 'Q4_K_M_L')."""
    pattern = r"(?<![A-Za-z0-9])" + re.escape(quant) + r"(?![A-Za-z0-9_])"
    return re.search(pattern, path, re.IGNORECASE) is not None
