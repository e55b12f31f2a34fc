"""Downloading model files: resumable, in parallel ranges, verified before they appear.

A file is fetched into <dest>.part, preallocated to its full size; several connections each
fill one byte range of it. <dest>.part.json records each range's progress (only bytes already
written are counted), the URL, size, validator (ETag) and expected checksum. The next run
resumes each range with an HTTP Range request and If-Range, so a remote file that changed
answers with the whole file instead and the download restarts cleanly. Once complete, the .part
is checksummed (sha256 from the Hub, md5 from GPT4All's catalog), fsynced and renamed to dest
in one step: dest is never a half-written file.
"""
from __future__ import annotations

import concurrent.futures as cf
import errno
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gpt4all_core.errors import ChecksumError, DownloadCancelled, DownloadError
from gpt4all_core.hub import http
from gpt4all_core.hub.records import file_digest, read_json, read_record, write_json_atomic, write_record

Progress = Callable[[int, int], object]  # (bytes done, bytes in all) over every file of the download
DEFAULT_CONNECTIONS = 4
PARALLEL_MIN = 32 << 20  # smaller files take one connection: more would cost more than they save
CHUNK = 1 << 16
SAVE_EVERY_S = 0.5
RETRIES = 5  # failures in a row, without a byte of progress, before a range gives up
STATE_VERSION = 1


@dataclass
class FileTask:
    """One file to fetch. size, sha256 and md5 are what the source states (any may be None);
    info goes into the file's record (repository, revision, quant...)."""

    url: str
    dest: Path
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    token: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")

    @property
    def state_path(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part.json")

    def checksum(self) -> tuple[str, str] | None:
        if self.sha256:
            return "sha256", self.sha256.lower()
        if self.md5:
            return "md5", self.md5.lower()
        return None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass
class _Probe:
    size: int | None
    validator: str | None  # ETag, else Last-Modified
    ranges: bool


@dataclass
class _Range:
    start: int
    end: int  # exclusive
    done: int


class _RemoteChanged(Exception):
    """The file on the server is not the one the .part holds the start of."""


def _write_at(fd: int, data: bytes, offset: int) -> None:
    # one place for every write, so that tests can make the disk fill up
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


class Downloader:
    """Fetches tasks in turn (each in parallel ranges), skipping those already current.
    cancel: an Event that stops it (DownloadCancelled; .part files kept)."""

    def __init__(self, tasks: list[FileTask], *, progress: Progress | None = None,
                 cancel: threading.Event | None = None, connections: int = DEFAULT_CONNECTIONS,
                 parallel_min: int = PARALLEL_MIN, retries: int = RETRIES, retry_wait: float = 0.2):
        if not isinstance(connections, int) or connections < 1:
            raise ValueError(f"connections must be a positive integer, not {connections!r}")
        self.tasks = tasks
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.connections, self.parallel_min, self.retries, self.retry_wait = connections, parallel_min, retries, retry_wait
        self.fetched: list[Path] = []  # what was downloaded (not already current)
        self._lock = threading.Lock()
        self._done = 0
        self._total = sum(t.size or 0 for t in tasks)
        self._last_report = 0.0

    # ---- the whole job ----

    def run(self) -> list[Path]:
        with http.client() as self._client:
            for task in self.tasks:
                self._check_cancel(task)
                if self._is_current(task):
                    size = task.dest.stat().st_size
                    if task.size is None:
                        with self._lock:
                            self._total += size
                    self._add(size)
                    self._report(force=True)
                    continue
                self._fetch(task)
                self.fetched.append(task.dest)
        self._report(force=True)
        return [t.dest for t in self.tasks]

    def _check_cancel(self, task: FileTask) -> None:
        if self.cancel.is_set():
            raise DownloadCancelled(f"download of {task.dest.name} cancelled; {task.part.name} is kept and the "
                                    "next run resumes it", url=task.url, path=task.part)

    def _add(self, n: int) -> None:
        # workers only count; the thread that runs the download reports, so that a progress
        # callback is never called from several threads at once
        with self._lock:
            self._done += n

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.progress is not None and (force or now - self._last_report >= 0.1):
            self._last_report = now
            self.progress(self._done, max(self._total, self._done))

    # ---- is the local file current? ----

    def _is_current(self, task: FileTask) -> bool:
        if not task.dest.is_file():
            return False
        size = task.dest.stat().st_size
        if task.size is not None and size != task.size:
            return False
        record = read_record(task.dest)
        want = task.checksum()
        if want is not None:
            algo, digest = want
            if record is not None and record.get(algo) is not None:
                return record[algo] == digest
            if file_digest(task.dest, algo) != digest:  # no record: hash once, then remember
                return False
            write_record(task.dest, {**task.info, "url": task.url, algo: digest})
            return True
        # no checksum to go by: the server's size and validator against what was recorded
        probe = self._probe(task)
        if probe.size is not None and probe.size != size:
            return False
        if record is not None and record.get("validator") and probe.validator:
            return record["validator"] == probe.validator
        write_record(task.dest, {**task.info, "url": task.url, "validator": probe.validator})
        return True

    # ---- one file ----

    def _fetch(self, task: FileTask) -> None:
        task.dest.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(2):
            try:
                self._fetch_once(task)
                return
            except _RemoteChanged:
                self._discard(task)
                if attempt:
                    raise DownloadError(f"{task.url} changed on the server twice during the download; try again "
                                        "later", url=task.url, path=task.dest) from None

    def _probe(self, task: FileTask) -> _Probe:
        """Size, validator and range support, from a one-byte range request."""
        headers = {**task.headers(), "Range": "bytes=0-0"}
        try:
            with self._client.stream("GET", task.url, headers=headers) as r:
                if r.status_code == 206:
                    total = _content_range(r)[2]
                    return _Probe(total, _validator(r), True)
                if r.status_code == 416 and r.headers.get("Content-Range", "").strip() == "bytes */0":
                    return _Probe(0, _validator(r), True)
                if r.status_code == 200:
                    length = r.headers.get("Content-Length")
                    return _Probe(int(length) if length and length.isdigit() else None, _validator(r), False)
                raise http.status_error(r, task.url, task.dest, has_token=bool(task.token))
        except httpx.HTTPError as e:
            raise http.transport_error(e, task.url, task.dest) from e

    def _fetch_once(self, task: FileTask) -> None:
        probe = self._probe(task)
        if task.size is not None and probe.size is not None and task.size != probe.size:
            raise DownloadError(f"{task.url}: the server sends {probe.size} bytes, but the source states "
                                f"{task.size}: the file changed, or the listing is stale", url=task.url, path=task.dest)
        size = probe.size if probe.size is not None else task.size
        if task.size is None and size is not None:
            with self._lock:
                self._total += size
        ranges = self._resume_state(task, probe, size)
        if ranges is None:
            ranges = self._new_part(task, probe, size)
        resumed = sum(r.done - r.start for r in ranges)
        if resumed:
            self._add(resumed)
            self._report(force=True)
        if size is not None:
            self._check_space(task, size - resumed)
        self._run_ranges(task, probe, size, ranges)
        self._finish(task, probe, size)

    def _state(self, task: FileTask, probe: _Probe, size: int | None, ranges: list[_Range]) -> dict[str, Any]:
        return {"version": STATE_VERSION, "url": task.url, "size": size, "validator": probe.validator,
                "ranged": probe.ranges, "sha256": task.sha256, "md5": task.md5,
                "ranges": [[r.start, r.end, r.done] for r in ranges]}

    def _resume_state(self, task: FileTask, probe: _Probe, size: int | None) -> list[_Range] | None:
        """The ranges to resume, if the .part and its state belong to this very file."""
        state = read_json(task.state_path)
        if not (isinstance(state, dict) and state.get("version") == STATE_VERSION and probe.ranges and size):
            return None
        same = (state.get("url") == task.url and state.get("size") == size
                and state.get("sha256") == task.sha256 and state.get("md5") == task.md5
                and state.get("validator") == probe.validator and task.part.is_file()
                and task.part.stat().st_size == size)
        if not same:
            return None  # the remote changed (or the state is someone else's): start over
        try:
            ranges = [_Range(int(a), int(b), int(c)) for a, b, c in state["ranges"]]
        except (KeyError, TypeError, ValueError):
            return None
        ok = all(0 <= r.start <= r.done <= r.end <= size for r in ranges)
        return ranges if ok and sum(r.end - r.start for r in ranges) == size else None

    def _new_part(self, task: FileTask, probe: _Probe, size: int | None) -> list[_Range]:
        self._discard(task)
        with open(task.part, "wb") as f:
            if size:
                f.truncate(size)  # sparse: each range writes at its own offset
        if not size or not probe.ranges:
            return [_Range(0, size or 0, 0)]
        n = self.connections if size >= self.parallel_min else 1
        step = -(-size // n)
        ranges = [_Range(s, min(s + step, size), s) for s in range(0, size, step)]
        write_json_atomic(task.state_path, self._state(task, probe, size, ranges))
        return ranges

    def _discard(self, task: FileTask) -> None:
        for p in (task.part, task.state_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def _check_space(self, task: FileTask, needed: int) -> None:
        free = shutil.disk_usage(task.part.parent).free
        if needed > free:
            raise DownloadError(f"not enough disk space for {task.dest.name}: {needed:,} more bytes needed, "
                                f"{free:,} free in {task.part.parent}", url=task.url, path=task.part)

    # ---- the ranges, in parallel ----

    def _run_ranges(self, task: FileTask, probe: _Probe, size: int | None, ranges: list[_Range]) -> None:
        stop = threading.Event()
        fd = os.open(task.part, os.O_WRONLY)
        pool = cf.ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="gpt4all-core-download")
        last_save = time.monotonic()
        ranged = probe.ranges and size is not None
        try:
            jobs = [pool.submit(self._fill, task, probe, r, fd, stop, ranged) for r in ranges if r.done < r.end or
                    not ranged]
            pending = set(jobs)
            while pending:
                finished, pending = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_EXCEPTION)
                self._report()
                if any(f.exception() is not None for f in finished):
                    break
                if self.cancel.is_set():
                    break
                if ranged and time.monotonic() - last_save >= SAVE_EVERY_S:
                    write_json_atomic(task.state_path, self._state(task, probe, size, ranges))
                    last_save = time.monotonic()
        finally:
            # also on KeyboardInterrupt: stop the workers, keep what they wrote, record it
            stop.set()
            pool.shutdown(wait=True)
            os.close(fd)
            if ranged and task.part.exists():
                write_json_atomic(task.state_path, self._state(task, probe, size, ranges))
        for f in jobs:
            if f.exception() is not None:
                raise f.exception()
        if not ranged or any(r.done < r.end for r in ranges):
            self._check_cancel(task)

    def _fill(self, task: FileTask, probe: _Probe, r: _Range, fd: int, stop: threading.Event,
              ranged: bool) -> None:
        """Fetches r into the .part, resuming after a dropped connection."""
        failures = 0
        while not stop.is_set() and (r.done < r.end or not ranged):
            headers = task.headers()
            if ranged:
                headers["Range"] = f"bytes={r.done}-{r.end - 1}"
                if probe.validator and not probe.validator.startswith("W/"):
                    headers["If-Range"] = probe.validator
            elif r.done:  # no ranges: a dropped connection means starting over
                self._add(-r.done)
                r.done = 0
            try:
                with self._client.stream("GET", task.url, headers=headers) as resp:
                    self._check_response(task, probe, r, resp, ranged)
                    for chunk in resp.iter_bytes(CHUNK):
                        if stop.is_set():
                            return
                        if ranged:
                            chunk = chunk[:r.end - r.done]
                        try:
                            _write_at(fd, chunk, r.done)
                        except OSError as e:
                            raise _write_error(e, task, r) from e
                        r.done += len(chunk)
                        self._add(len(chunk))
                        failures = 0
                        if ranged and r.done >= r.end:
                            break
                if not ranged:
                    if r.end and r.done != r.end:
                        raise httpx.RemoteProtocolError(f"{r.done} of {r.end} bytes received")
                    r.end = r.done
                    return
            except httpx.TransportError as e:  # a dropped connection, a reset, a stall: go on from r.done
                failures += 1
                if failures > self.retries:
                    err = http.transport_error(e, task.url, task.part)
                    raise DownloadError(f"{err} (gave up after {self.retries} retries; {task.part.name} is kept "
                                        "and the next run resumes it)", url=task.url, path=task.part) from e
                stop.wait(self.retry_wait * 2 ** (failures - 1))

    def _check_response(self, task: FileTask, probe: _Probe, r: _Range, resp: httpx.Response, ranged: bool) -> None:
        if not ranged:
            if resp.status_code != 200:
                raise http.status_error(resp, task.url, task.dest, has_token=bool(task.token))
            return
        if resp.status_code in (200, 416):  # If-Range failed: the server sends another file now
            raise _RemoteChanged()
        if resp.status_code != 206:
            raise http.status_error(resp, task.url, task.dest, has_token=bool(task.token))
        start, _, total = _content_range(resp)
        validator = _validator(resp)
        if start != r.done or total != (probe.size) or (probe.validator and validator and validator != probe.validator):
            raise _RemoteChanged()

    # ---- verify and move into place ----

    def _finish(self, task: FileTask, probe: _Probe, size: int | None) -> None:
        got = task.part.stat().st_size
        if size is not None and got != size:
            raise DownloadError(f"{task.part} holds {got} bytes, expected {size}", url=task.url, path=task.part)
        info = {**task.info, "url": task.url, "validator": probe.validator}
        want = task.checksum()
        if want is not None:
            algo, expected = want
            actual = file_digest(task.part, algo)
            if actual != expected:
                self._discard(task)
                raise ChecksumError(f"{task.dest.name}: {algo} mismatch: expected {expected}, got {actual}; the "
                                    f"partial download was removed (from {task.url})", algorithm=algo,
                                    expected=expected, actual=actual, url=task.url, path=task.dest)
            info[algo] = expected
        fd = os.open(task.part, os.O_RDONLY)
        try:
            os.fsync(fd)  # the bytes are on disk before the name says the file is complete
        finally:
            os.close(fd)
        os.replace(task.part, task.dest)
        write_record(task.dest, info)
        try:
            task.state_path.unlink()
        except FileNotFoundError:
            pass


def _validator(r: httpx.Response) -> str | None:
    return r.headers.get("ETag") or r.headers.get("Last-Modified")


def _content_range(r: httpx.Response) -> tuple[int, int, int]:
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+)\s*", r.headers.get("Content-Range", ""))
    if m is None:
        raise DownloadError(f"{r.url}: a 206 answer without a usable Content-Range "
                            f"({r.headers.get('Content-Range')!r})", url=str(r.url))
    return int(m[1]), int(m[2]), int(m[3])


def _write_error(e: OSError, task: FileTask, r: _Range) -> DownloadError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError(f"disk full while writing {task.part} ({e.strerror}); free some space and run again: "
                             f"the .part is kept and the download resumes", url=task.url, path=task.part)
    return DownloadError(f"cannot write {task.part}: {e.strerror or e}", url=task.url, path=task.part)
