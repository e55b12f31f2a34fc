"""A local stand-in for the Hugging Face Hub and GPT4All's catalog, on 127.0.0.1, for the hub tests.

What it mimics, as the real services answer:
- GET /api/models/<user>/<repo>[/revision/<rev>]?blobs=true: the model info, with siblings that
  carry size and, for LFS files, lfs.sha256; a missing repository is 401 RepoNotFound (anonymous),
  a missing revision 404 RevisionNotFound; a gated repository's info is public.
- GET|HEAD /<user>/<repo>/resolve/<rev>/<path>: a gated repository wants 'Authorization: Bearer
  <token>' (none: 401 GatedRepo; a wrong one: 403); a missing file is 404 EntryNotFound; LFS files
  redirect (302) to /_blob/<sha256> with X-Linked-Etag/X-Linked-Size/X-Repo-Commit, as the Hub
  redirects to its CDN; small files are served directly.
- byte serving with Range (206 + Content-Range, 416), If-Range against a strong ETag, and knobs:
  throttle (bytes per second), drop_after (close the connection after N bytes, a given number of
  times), no_ranges (a server that ignores Range).
- GET /files/<name>: plain files; GET /models3.json: the catalog.
Every request is logged (method, path, Range, If-Range, Authorization) for tests to assert on.
"""
from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

TOKEN = "hf_test_token_123"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.blobs: dict[str, bytes] = {}
        self.plain: dict[str, bytes] = {}
        self.catalog: list[dict] | None = None
        self.requests: list[dict] = []
        self.throttle: float | None = None  # bytes per second of every body
        self.drop_after: int | None = None  # bytes of a body after which the connection is cut...
        self.drops_left = 0                 # ...this many times
        self.no_ranges = False
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.hub = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- content ----

    def add_repo(self, repo: str, files: dict[str, bytes], *, gated: bool = False, revisions: tuple = ("main",)) -> None:
        self.repos[repo] = {"files": {}, "gated": gated, "revisions": set(revisions)}
        for path, data in files.items():
            self.put(repo, path, data)

    def put(self, repo: str, path: str, data: bytes) -> str:
        """Adds or replaces a file; .gguf files are LFS (a sha256, a redirect). Returns the sha256."""
        sha = hashlib.sha256(data).hexdigest()
        lfs = path.endswith(".gguf")
        if lfs:
            self.blobs[sha] = data
        self.repos[repo]["files"][path] = {"data": data, "sha256": sha, "lfs": lfs}
        return sha

    def add_file(self, name: str, data: bytes) -> str:
        self.plain[name] = data
        return f"{self.url}/files/{name}"

    def set_catalog(self, entries: list[dict]) -> str:
        self.catalog = entries
        return f"{self.url}/models3.json"

    def resolve_url(self, repo: str, path: str, rev: str = "main") -> str:
        return f"{self.url}/{repo}/resolve/{rev}/{path}"

    def ranges_requested(self, path_part: str) -> list[str]:
        return [r["range"] for r in self.requests if path_part in r["path"] and r["range"]]

    def body_requests(self, path_part: str) -> list[dict]:
        """GETs of a file's bytes other than the downloader's 1-byte probes."""
        return [r for r in self.requests if path_part in r["path"] and r["method"] == "GET"
                and r["range"] != "bytes=0-0"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        with self.hub.lock:
            self.hub.requests.append({"method": self.command, "path": path, "range": self.headers.get("Range"),
                                      "if_range": self.headers.get("If-Range"),
                                      "auth": self.headers.get("Authorization")})
        try:
            if path == "/models3.json" and self.hub.catalog is not None:
                return self._json(200, self.hub.catalog, head)
            if path.startswith("/files/") and path[7:] in self.hub.plain:
                data = self.hub.plain[path[7:]]
                return self._bytes(data, f'"{hashlib.md5(data).hexdigest()}"', head)
            if path.startswith("/_blob/") and path[7:] in self.hub.blobs:
                return self._bytes(self.hub.blobs[path[7:]], f'"{path[7:]}"', head)
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
            if m:
                return self._model_info(m[1], m[2] or "main", head)
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m:
                return self._resolve(m[1], m[2], m[3], head)
            self._error(404, None, "not found", head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a probe that read its byte, a cancelled download)

    def _model_info(self, repo: str, rev: str, head: bool) -> None:
        r = self.hub.repos.get(repo)
        if r is None:
            return self._error(401, "RepoNotFound", "Repository not found", head)
        if rev not in r["revisions"]:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        siblings = []
        for p, f in sorted(r["files"].items()):
            s = {"rfilename": p, "blobId": hashlib.sha1(f["data"]).hexdigest(), "size": len(f["data"])}
            if f["lfs"]:
                s["lfs"] = {"sha256": f["sha256"], "size": len(f["data"]), "pointerSize": 134}
            siblings.append(s)
        self._json(200, {"_id": "x", "id": repo, "modelId": repo, "author": repo.split("/")[0], "sha": COMMIT,
                         "private": False, "gated": "manual" if r["gated"] else False, "disabled": False,
                         "downloads": 0, "likes": 0, "tags": ["gguf"], "siblings": siblings,
                         "lastModified": "2024-10-01T00:00:00.000Z", "createdAt": "2024-09-01T00:00:00.000Z"}, head)

    def _resolve(self, repo: str, rev: str, path: str, head: bool) -> None:
        r = self.hub.repos.get(repo)
        if r is None:
            return self._error(401, "RepoNotFound", "Repository not found", head)
        if r["gated"]:
            auth = self.headers.get("Authorization")
            if auth is None:
                return self._error(401, "GatedRepo", f"Access to model {repo} is restricted. You must have access "
                                   "to it and be authenticated to access it. Please log in.", head)
            if auth != f"Bearer {TOKEN}":
                return self._error(403, "GatedRepo", f"Access to model {repo} is restricted and you are not in "
                                   "the authorized list.", head)
        if rev not in r["revisions"]:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        f = r["files"].get(path)
        if f is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist on \"{rev}\"", head)
        if f["lfs"]:
            self.send_response(302)
            self.send_header("Location", f"/_blob/{f['sha256']}?expires=1")
            self.send_header("X-Linked-Etag", f'"{f["sha256"]}"')
            self.send_header("X-Linked-Size", str(len(f["data"])))
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._bytes(f["data"], f'"{hashlib.sha1(f["data"]).hexdigest()}"', head)

    def _error(self, code: int, hub_code: str | None, message: str, head: bool) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(code)
        if hub_code:
            self.send_header("X-Error-Code", hub_code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, code: int, doc, head: bool) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _bytes(self, data: bytes, etag: str, head: bool) -> None:
        hub = self.hub
        size = len(data)
        start, end = 0, size - 1
        status = 200
        rng = None if hub.no_ranges else self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and (if_range is None or if_range == etag):
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                start = int(m[1])
                end = min(int(m[2]) if m[2] else size - 1, size - 1)
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
        self.send_response(status)
        self.send_header("ETag", etag)
        if not hub.no_ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if head:
            return
        body = memoryview(data)[start:end + 1]
        cut = None
        with hub.lock:
            # a downloader's 1-byte probe is never cut, so that drop_after=0 fails only real transfers
            if hub.drop_after is not None and hub.drops_left > 0 and len(body) > max(hub.drop_after, 1):
                hub.drops_left -= 1
                cut = hub.drop_after
        sent = 0
        step = 16384
        while sent < len(body):
            piece = body[sent:sent + step]
            if cut is not None and sent + len(piece) > cut:
                self.wfile.write(piece[:cut - sent])
                self.wfile.flush()
                # an abrupt end: the client sees fewer bytes than Content-Length promised
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(piece)
            sent += len(piece)
            if hub.throttle:
                time.sleep(len(piece) / hub.throttle)
