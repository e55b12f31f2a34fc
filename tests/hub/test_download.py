"""The downloader: parallel ranges, resume, If-Range restarts, checksums, cancel, and every failure
with a clear message and never a half-written final file."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from gpt4all_core import hub
from gpt4all_core.errors import ChecksumError, DownloadCancelled, DownloadError
from gpt4all_core.hub import download
from gpt4all_core.hub.download import Downloader, FileTask
from gpt4all_core.hub.records import read_record

MIB = 1 << 20


def payload(n: int = MIB, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).bytes(n)


DATA = payload()
SHA = hashlib.sha256(DATA).hexdigest()


def task(hub_, models, name="blob.bin", data=DATA, **kw) -> FileTask:
    url = hub_.add_file(name, data)
    return FileTask(url, models / name, **kw)


def starts(ranges: list[str]) -> list[int]:
    return [int(re.match(r"bytes=(\d+)-", r)[1]) for r in ranges]


def leftovers(models) -> list[str]:
    return sorted(p.name for p in models.iterdir() if p.name != ".hub")


def test_parallel_ranges_checksum_and_record(hub, models):
    seen = []
    t = task(hub, models, sha256=SHA, size=len(DATA))
    Downloader([t], connections=4, parallel_min=64 << 10, progress=lambda d, n: seen.append((d, n))).run()
    assert t.dest.read_bytes() == DATA
    assert leftovers(models) == ["blob.bin"]  # no .part, no .part.json
    ranges = [r for r in hub.ranges_requested("/files/blob.bin") if r != "bytes=0-0"]
    assert sorted(starts(ranges)) == [0, 262144, 524288, 786432]  # four connections, one range each
    assert seen[-1] == (len(DATA), len(DATA)) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert read_record(t.dest)["sha256"] == SHA


def test_small_file_takes_one_connection(hub, models):
    t = task(hub, models, sha256=SHA)
    Downloader([t], connections=4, parallel_min=2 * MIB).run()
    assert t.dest.read_bytes() == DATA
    assert [r for r in hub.ranges_requested("blob.bin") if r != "bytes=0-0"] == [f"bytes=0-{len(DATA) - 1}"]


def test_current_file_is_not_fetched_again(hub, models):
    t = task(hub, models, sha256=SHA, size=len(DATA))
    Downloader([t]).run()
    n = len(hub.requests)
    d = Downloader([FileTask(t.url, t.dest, size=len(DATA), sha256=SHA)])
    d.run()
    assert len(hub.requests) == n and d.fetched == []  # the record says it is the same file: no request at all


def test_existing_file_without_record_is_hashed_not_refetched(hub, models):
    t = task(hub, models, md5=hashlib.md5(DATA).hexdigest())
    t.dest.write_bytes(DATA)
    d = Downloader([t])
    d.run()
    assert d.fetched == [] and hub.body_requests("blob.bin") == []
    t.dest.write_bytes(DATA[:-1] + b"x")  # changed locally (same size): fetched anew
    st = t.dest.stat()
    os.utime(t.dest, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime even on a coarse clock
    d = Downloader([FileTask(t.url, t.dest, md5=t.md5)])
    d.run()
    assert d.fetched == [t.dest] and t.dest.read_bytes() == DATA


def test_dropped_connections_resume_where_they_stopped(hub, models):
    hub.drop_after, hub.drops_left = 100_000, 3
    t = task(hub, models, sha256=SHA)
    Downloader([t], connections=2, parallel_min=64 << 10, retry_wait=0.01).run()
    assert t.dest.read_bytes() == DATA
    got = starts([r for r in hub.ranges_requested("blob.bin") if r != "bytes=0-0"])
    assert len(got) == 2 + 3  # one request per range, and one more per cut
    assert any(s not in (0, 524288) for s in got)  # a range continued mid-way, not from its start


def test_gives_up_after_retries_and_keeps_the_part(hub, models):
    hub.drop_after, hub.drops_left = 0, 100  # every transfer cut before its first byte: no progress
    t = task(hub, models, sha256=SHA)
    with pytest.raises(DownloadError, match=r"gave up after 2 retries; blob.bin.part is kept") as e:
        Downloader([t], retries=2, retry_wait=0.01).run()
    assert e.value.url == t.url
    assert not t.dest.exists() and t.part.exists() and t.state_path.exists()
    assert len(hub.body_requests("blob.bin")) == 3  # the first try and two retries
    hub.drops_left = 0
    Downloader([FileTask(t.url, t.dest, sha256=SHA)]).run()
    assert t.dest.read_bytes() == DATA


def test_cancel_keeps_the_part_and_the_next_run_resumes(hub, models):
    hub.throttle = 400_000
    t = task(hub, models, sha256=SHA)
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done > 200_000:
            cancel.set()

    with pytest.raises(DownloadCancelled, match="blob.bin.part is kept"):
        Downloader([t], cancel=cancel, progress=progress).run()
    assert not t.dest.exists() and t.part.stat().st_size == len(DATA)  # preallocated, partly filled
    done = json.loads(t.state_path.read_text())["ranges"][0][2]
    assert 200_000 < done < len(DATA)
    hub.throttle = None
    Downloader([FileTask(t.url, t.dest, sha256=SHA)]).run()
    assert t.dest.read_bytes() == DATA
    assert starts(hub.ranges_requested("blob.bin"))[-1] == done  # on from exactly what was recorded


def test_controller_cancel_and_future(hub, models):
    hub.throttle = 300_000
    url = hub.add_file("ctl.bin", DATA)
    ctl = hub_download(url, models)
    time.sleep(0.3)
    ctl.cancel()
    with pytest.raises(DownloadCancelled):
        ctl.result(timeout=10)
    assert (models / "ctl.bin.part").exists() and not (models / "ctl.bin").exists()
    hub.throttle = None
    assert hub_download(url, models).result(timeout=30) == models / "ctl.bin"
    assert (models / "ctl.bin").read_bytes() == DATA


def hub_download(url, models):
    return hub.download_model(url, models)


def test_remote_changed_since_the_part_restarts_cleanly(hub, models):
    hub.throttle = 400_000
    t = task(hub, models, name="moving.bin")
    cancel = threading.Event()
    with pytest.raises(DownloadCancelled):
        Downloader([t], cancel=cancel, progress=lambda d, n: d > 100_000 and cancel.set()).run()
    hub.throttle = None
    new = payload(seed=2)
    hub.add_file("moving.bin", new)  # a new ETag: the part holds the start of another file
    Downloader([FileTask(t.url, t.dest)]).run()
    assert t.dest.read_bytes() == new
    assert starts(hub.ranges_requested("moving.bin"))[-1] == 0


def test_if_range_catches_a_change_after_the_probe(hub, models, monkeypatch):
    """The file changes between the probe and the range request: If-Range makes the server send
    the whole new file (200), and the download starts over instead of mixing two files."""
    hub.throttle = 400_000
    t = task(hub, models, name="race.bin")
    cancel = threading.Event()
    with pytest.raises(DownloadCancelled):
        Downloader([t], cancel=cancel, progress=lambda d, n: d > 100_000 and cancel.set()).run()
    hub.throttle = None
    old_etag = json.loads(t.state_path.read_text())["validator"]
    new = payload(seed=3)
    real_probe = Downloader._probe
    probes = []

    def probe_then_change(self, task_):
        p = real_probe(self, task_)
        probes.append(p.validator)
        if len(probes) == 1:
            hub.add_file("race.bin", new)  # right after the probe saw the old file
        return p

    monkeypatch.setattr(Downloader, "_probe", probe_then_change)
    Downloader([FileTask(t.url, t.dest)]).run()
    assert t.dest.read_bytes() == new
    assert probes[0] == old_etag != probes[1]
    resumed = [r for r in hub.requests if r["if_range"] == old_etag]
    assert resumed and starts([resumed[-1]["range"]])[0] > 100_000  # the resume the server refused
    assert starts(hub.ranges_requested("race.bin"))[-1] == 0  # then from the start


def test_checksum_mismatch_removes_the_part(hub, models):
    wrong = "0" * 32
    t = task(hub, models, md5=wrong)
    with pytest.raises(ChecksumError) as e:
        Downloader([t]).run()
    actual = hashlib.md5(DATA).hexdigest()
    assert f"expected {wrong}, got {actual}" in str(e.value) and "blob.bin" in str(e.value)
    assert (e.value.algorithm, e.value.expected, e.value.actual) == ("md5", wrong, actual)
    assert leftovers(models) == []  # no final file, no .part, no state


def test_disk_full_before_starting(hub, models, monkeypatch):
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: SimpleNamespace(total=10**9, used=10**9, free=1000))
    t = task(hub, models, sha256=SHA)
    with pytest.raises(DownloadError, match=r"not enough disk space for blob.bin: 1,048,576 more bytes needed, "
                       r"1,000 free"):
        Downloader([t]).run()
    assert not t.dest.exists()


def test_disk_full_while_writing_keeps_the_part(hub, models, monkeypatch):
    real = download._write_at
    written = [0]

    def filling(fd, data, offset):
        if written[0] + len(data) > 300_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        written[0] += len(data)
        real(fd, data, offset)

    monkeypatch.setattr(download, "_write_at", filling)
    t = task(hub, models, sha256=SHA)
    with pytest.raises(DownloadError, match=r"disk full while writing .*blob.bin.part \(No space left on device\)"):
        Downloader([t]).run()
    assert not t.dest.exists() and t.part.exists()
    monkeypatch.setattr(download, "_write_at", real)
    Downloader([FileTask(t.url, t.dest, sha256=SHA)]).run()  # space freed: resumes
    assert t.dest.read_bytes() == DATA and starts(hub.ranges_requested("blob.bin"))[-1] > 0


def test_no_network(models):
    t = FileTask("http://127.0.0.1:9/files/x.gguf", models / "x.gguf")
    with pytest.raises(DownloadError, match=r"cannot connect to 127.0.0.1:9 .*no network.*127.0.0.1:9/files/x.gguf"):
        Downloader([t]).run()
    assert leftovers(models) == []


def test_not_found(hub, models):
    t = FileTask(f"{hub.url}/files/nothing.gguf", models / "nothing.gguf")
    with pytest.raises(DownloadError, match=r"HTTP 404 for http://127.0.0.1:\d+/files/nothing.gguf"):
        Downloader([t]).run()
    assert leftovers(models) == []


def test_server_without_ranges(hub, models):
    hub.no_ranges = True
    hub.drop_after, hub.drops_left = 200_000, 2  # the probe's full answer takes one cut, the transfer one
    t = task(hub, models, sha256=SHA)
    Downloader([t], retry_wait=0.01).run()
    assert t.dest.read_bytes() == DATA and leftovers(models) == ["blob.bin"]
    # no ranges: after the cut it started over (probe, cut transfer, whole transfer), nothing asked a Range
    assert len(hub.body_requests("blob.bin")) == 2 and hub.ranges_requested("blob.bin") == ["bytes=0-0"]


def test_size_stated_by_the_source_must_match(hub, models):
    t = task(hub, models, size=len(DATA) + 1)
    with pytest.raises(DownloadError, match=f"sends {len(DATA)} bytes, but the source states {len(DATA) + 1}"):
        Downloader([t]).run()
