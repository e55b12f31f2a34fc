"""A GGUF file's header read over HTTP: only its first bytes, through Range requests.

`gpt4all-core inspect` and `estimate` on a URL or an hf: reference need the metadata and the
tensor list, not gigabytes of weights. We fetch 1 MiB, parse it with the same parser as local
files, and when the header runs past what we have (a 262k-token vocabulary takes several MB),
fetch four times as much and parse again.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

from gpt4all_core import gguf
from gpt4all_core.errors import GGUFError
from gpt4all_core.gguf.reader import GGUFFile
from gpt4all_core.hub import http
from gpt4all_core.hub.refs import ModelRef, split_parts

FIRST_BYTES = 1 << 20
MAX_HEADER_BYTES = 256 << 20  # no real header comes near this; a hostile one stops here


class RemoteGGUF(GGUFFile):
    """A GGUFFile over a remote file's header: metadata, types and tensor infos as for a local file
    (offsets checked against the remote size); tensor data is not available."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, *, client: httpx.Client | None = None,
                 first_bytes: int = FIRST_BYTES, max_bytes: int = MAX_HEADER_BYTES):
        self.path = url
        self._mmap = None
        self.bytes_fetched = 0
        own = client is None
        self._client = client or http.client()
        self._headers = dict(headers or {})
        try:
            buf = bytearray()
            want = first_bytes
            while True:
                self._extend(buf, want)
                self._mmap = bytes(buf)
                try:
                    self._parse()
                    return
                except GGUFError as e:
                    if len(buf) >= self.file_size or not _needs_more(e):
                        raise
                    if len(buf) >= max_bytes:
                        raise GGUFError(f"header larger than {max_bytes} bytes; not read further", path=url) from e
                    want = min(len(buf) * 4, max_bytes)
        finally:
            if own:
                self._client.close()

    def _extend(self, buf: bytearray, want: int) -> None:
        """Makes buf hold the file's first `want` bytes (or all of a smaller file)."""
        url = self.path
        start = len(buf)
        headers = {**self._headers, "Range": f"bytes={start}-{want - 1}"}
        try:
            with self._client.stream("GET", url, headers=headers) as r:
                if r.status_code == 206:
                    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+)\s*", r.headers.get("Content-Range", ""))
                    if m is None or int(m[1]) != start:
                        raise GGUFError(f"the server answered a range request with Content-Range "
                                        f"{r.headers.get('Content-Range')!r}", path=url)
                    self.file_size = int(m[3])
                elif r.status_code == 200:
                    # no ranges: read the stream from the start, and only as far as needed
                    length = r.headers.get("Content-Length")
                    self.file_size = int(length) if length and length.isdigit() else 1 << 62
                    buf.clear()
                    start = 0
                elif r.status_code == 416:
                    raise GGUFError("file is empty", path=url, offset=0, field="magic")
                else:
                    raise http.status_error(r, url, has_token="Authorization" in self._headers)
                for chunk in r.iter_bytes(1 << 16):
                    buf += chunk[:want - len(buf)]
                    if len(buf) >= want:
                        break
        except httpx.HTTPError as e:
            raise http.transport_error(e, url) from e
        self.bytes_fetched += len(buf) - start
        if r.status_code == 200 and len(buf) < want:
            self.file_size = len(buf)  # the whole (small) file came

    def close(self) -> None:
        self._mmap = None


def _needs_more(e: GGUFError) -> bool:
    # the parser's two ways of running out of bytes: a field past the end, a count too big for the rest
    text = str(e)
    return "truncated" in text or "cannot fit in the" in text


def open_headers(ref: ModelRef, local: Path | None, tasks_or_none, all_parts: bool = True) -> list[GGUFFile]:
    """GGUF headers of a model: its local file(s) when on disk, else read over HTTP from the
    download tasks' URLs (every part of a split model when all_parts)."""
    if local is not None:
        parts = split_parts(local.name)
        paths = [local.parent / p for p in parts] if parts and all_parts else [local]
        return _open_all(lambda p: gguf.open(p), paths)
    tasks = tasks_or_none() if callable(tasks_or_none) else tasks_or_none
    tasks = tasks if all_parts else tasks[:1]
    with http.client() as c:
        return _open_all(lambda t: RemoteGGUF(t.url, t.headers(), client=c), tasks)


def _open_all(opener, items) -> list[GGUFFile]:
    opened: list[GGUFFile] = []
    try:
        for item in items:
            opened.append(opener(item))
    except BaseException:
        for f in opened:
            f.close()
        raise
    return opened


def display_name(f: GGUFFile) -> str:
    return os.path.basename(f.path.split("?", 1)[0])
