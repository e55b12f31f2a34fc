"""From a model reference to a local file: looked up on disk first (no network needed for a model
already there, hf: references included), downloaded when missing and allowed."""
from __future__ import annotations

import concurrent.futures as cf
import os
import posixpath
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gpt4all_core.errors import ModelNotFoundError
from gpt4all_core.hub import catalog, hf
from gpt4all_core.hub.download import DEFAULT_CONNECTIONS, Downloader, FileTask, Progress
from gpt4all_core.hub.records import find_hf_download
from gpt4all_core.hub.refs import ModelRef, parse_reference, split_parts


def models_dir(directory: str | os.PathLike | None = None) -> Path:
    """directory, else GPT4ALL_MODEL_DIR, else ~/.cache/gpt4all (where GPT4All's Python package keeps models)."""
    if directory is not None:
        return Path(directory).expanduser()
    return Path(os.environ.get("GPT4ALL_MODEL_DIR") or Path.home() / ".cache" / "gpt4all")


def parse(ref: str | os.PathLike | ModelRef) -> ModelRef:
    return parse_reference(ref, hf.endpoint())


def local_file(ref: ModelRef, directory: Path) -> Path | None:
    """The file a reference names, if it is on disk already (every part, for a split model)."""
    if ref.kind == "path":
        return ref.path if ref.path.is_file() else None
    if ref.kind == "hf":
        return find_hf_download(ref, directory)
    name = ref.name
    parts = split_parts(name) or [name]
    if all((directory / p).is_file() for p in parts):
        return directory / parts[0]
    return None


def plan(ref: ModelRef, directory: Path, *, url: str | None = None, md5sum: str | None = None,
         sha256: str | None = None, models: list[dict[str, Any]] | None = None) -> list[FileTask]:
    """The files to fetch for a reference, with what their source states about them."""
    if ref.kind == "path":
        raise ModelNotFoundError(f"model file not found: {ref.path}")
    if ref.kind == "hf":
        return hf.tasks_for(ref, directory)
    if ref.kind == "url":
        parts = split_parts(ref.name)
        if parts is None:
            return [FileTask(ref.url, directory / ref.name, sha256=sha256, md5=md5sum, info={"source": "url"})]
        base = urlsplit(ref.url)
        folder = posixpath.dirname(base.path)
        return [FileTask(urlunsplit(base._replace(path=f"{folder}/{p}")), directory / p, info={"source": "url"})
                for p in parts]
    # a name: GPT4All's catalog says where it comes from (or url=, as the Node API's downloadModel takes)
    entry = catalog.find_model(ref.name, models if models is not None else catalog.list_models())
    if entry is None and url is None:
        raise ModelNotFoundError(f"model {ref.name!r} is neither in {directory} nor in the GPT4All catalog; "
                                 "name a file path, an hf:<user>/<repo>:<quant> reference or a URL")
    entry = entry or {}
    source = url or entry["url"]
    # GPT4All's catalog points at the Hub for many models: a gated one needs the token there too
    on_hub = urlsplit(source)[:2] == urlsplit(hf.endpoint())[:2]
    return [FileTask(source, directory / ref.name, size=catalog.expected_size(entry),
                     md5=md5sum or entry.get("md5sum") or None, sha256=sha256, token=hf.token() if on_hub else None,
                     info={"source": "catalog", "name": entry.get("name")})]


def resolve_model_file(uri: str | os.PathLike | ModelRef, directory: str | os.PathLike | None = None, *,
                       allow_download: bool = True, progress: Progress | None = None,
                       connections: int = DEFAULT_CONNECTIONS) -> Path:
    """The local path of a model reference (the first part of a split model): on disk already, or
    downloaded into directory (default models_dir()) when allow_download."""
    ref = parse(uri)
    folder = models_dir(directory)
    found = local_file(ref, folder)
    if found is not None:
        return found
    if ref.kind == "path":
        raise ModelNotFoundError(f"model file not found: {ref.path}")
    if not allow_download:
        shown = ref.name if ref.kind == "name" else ref.text
        raise ModelNotFoundError(f"model {shown} is not in {folder} and downloading is off (allow_download=False)")
    tasks = plan(ref, folder)
    Downloader(tasks, progress=progress, connections=connections).run()
    return tasks[0].dest


@dataclass
class DownloadController:
    """A download running in the background, as GPT4All Node's downloadModel returns it:
    cancel() stops it (the .part is kept to resume), future holds the final path."""

    future: cf.Future = field(default_factory=cf.Future)
    _cancel: threading.Event = field(default_factory=threading.Event)
    fetched: list[Path] = field(default_factory=list)  # the files actually downloaded (not already current)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def result(self, timeout: float | None = None) -> Path:
        return self.future.result(timeout)


def download_model(model: str | os.PathLike | ModelRef, directory: str | os.PathLike | None = None, *,
                   url: str | None = None, md5sum: str | None = None, sha256: str | None = None,
                   progress: Progress | None = None, connections: int = DEFAULT_CONNECTIONS) -> DownloadController:
    """Starts fetching a model (every part of a split one) into directory in the background; files
    already there and current are kept. url/md5sum/sha256 override what the catalog states."""
    ref = parse(model)
    folder = models_dir(directory)
    ctl = DownloadController()

    def work() -> None:
        if not ctl.future.set_running_or_notify_cancel():
            return
        try:
            if ref.kind == "path":  # nothing to fetch: there, or an error naming it
                ctl.future.set_result(resolve_model_file(ref, folder, allow_download=False))
                return
            tasks = plan(ref, folder, url=url, md5sum=md5sum, sha256=sha256)
            d = Downloader(tasks, progress=progress, cancel=ctl._cancel, connections=connections)
            d.run()
            ctl.fetched.extend(d.fetched)
            ctl.future.set_result(tasks[0].dest)
        except BaseException as e:  # the caller sees every failure through the future
            ctl.future.set_exception(e)

    threading.Thread(target=work, name="gpt4all-core-download", daemon=True).start()
    return ctl


def retrieve_model(model_name: str | os.PathLike, model_path: str | os.PathLike | None = None,
                   allow_download: bool = True, verbose: bool = False,
                   progress: Progress | None = None) -> dict[str, Any]:
    """GPT4All.retrieve_model: the model's config (its catalog entry, when it has one) with
    'filename' and 'path', downloading it when missing and allowed."""
    ref = parse(model_name)
    folder = models_dir(model_path)
    config: dict[str, Any] = {}
    if ref.kind == "name":
        there = local_file(ref, folder) is not None
        # the live catalog only when a download needs it: loading a model on disk stays offline
        models = catalog.load_catalog(offline=there or not allow_download)[0]
        config.update(catalog.find_model(ref.name, models) or {})
    if progress is None and allow_download:
        progress = _tqdm_progress(str(ref))
    path = resolve_model_file(ref, folder, allow_download=allow_download, progress=progress)
    if verbose:
        print(f"Found model file at {str(path)!r}")
    config.update(filename=path.name, path=str(path))
    return config


def _tqdm_progress(label: str) -> Progress:
    """A tqdm bar made on the first report, so that nothing shows when nothing is downloaded."""
    state: dict[str, Any] = {}

    def report(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            from tqdm import tqdm
            bar = state["bar"] = tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024,
                                      desc=label, disable=None)
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()

    return report
