"""Hugging Face repositories: which files an hf: reference means, with their sizes and sha256.

huggingface_hub does the talking (the model info API with files_metadata, its errors, the
token from HF_TOKEN or ~/.cache/huggingface/token, the /resolve/ URL). HF_ENDPOINT is read at
each call rather than at import, as huggingface_hub would, so that it can be pointed elsewhere
(a mirror, or the tests' local server) at any time.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from gpt4all_core.errors import AuthenticationError, DownloadError, ModelNotFoundError
from gpt4all_core.hub.download import FileTask
from gpt4all_core.hub.refs import DEFAULT_QUANTS, ModelRef, quant_matches, safe_filename, split_parts

DEFAULT_ENDPOINT = "https://huggingface.co"


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def token() -> str | None:
    """HF_TOKEN, else the token `hf auth login` saved (~/.cache/huggingface/token)."""
    import huggingface_hub
    return huggingface_hub.get_token()


@dataclass(frozen=True)
class RepoFile:
    path: str
    size: int | None
    sha256: str | None  # LFS files only; small files in git have none


@dataclass(frozen=True)
class RepoListing:
    repo: str
    revision: str
    commit: str | None
    files: dict[str, RepoFile]


def repo_listing(repo: str, revision: str = "main", hf_token: str | None = None) -> RepoListing:
    """The repository's files with sizes and LFS sha256, at revision."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    ep = endpoint()
    where = f"{repo} on {ep}"
    try:
        info = HfApi(endpoint=ep, token=hf_token or False).model_info(
            repo, revision=None if revision == "main" else revision, files_metadata=True)
    except GatedRepoError as e:
        raise AuthenticationError(f"{where} is gated: accept its terms on the Hub, then set HF_TOKEN or log in "
                                  f"(`hf auth login`)", url=f"{ep}/{repo}") from e
    except RevisionNotFoundError as e:
        raise ModelNotFoundError(f"{where}: no branch, tag or commit {revision!r}") from e
    except RepositoryNotFoundError as e:
        raise ModelNotFoundError(f"{where}: no such repository, or it is private"
                                 f"{' and the token cannot see it' if hf_token else ' (set HF_TOKEN)'}") from e
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", "?")
        raise DownloadError(f"{where}: the Hub answered HTTP {status}: {e}", url=f"{ep}/api/models/{repo}") from e
    except OfflineModeIsEnabled as e:
        raise DownloadError(f"{where}: HF_HUB_OFFLINE is set and {repo} is not downloaded", url=ep) from e
    except Exception as e:
        from gpt4all_core.hub import http
        if http.is_http_library_error(e):  # no network, a timeout: huggingface_hub lets these through
            raise http.transport_error(e, f"{ep}/api/models/{repo}") from e
        raise
    files = {}
    for s in info.siblings or []:
        lfs = s.lfs
        files[s.rfilename] = RepoFile(s.rfilename, lfs.size if lfs else s.size, lfs.sha256 if lfs else None)
    return RepoListing(repo, revision, info.sha, files)


def pick_file(listing: RepoListing, ref: ModelRef) -> str:
    """The repository path an hf: reference means: its file, or the GGUF its quant names."""
    if ref.file is not None:
        if ref.file not in listing.files:
            raise ModelNotFoundError(f"{ref}: {listing.repo} has no file {ref.file!r} at {listing.revision}")
        return ref.file
    ggufs = sorted(p for p in listing.files if p.endswith(".gguf") and "mmproj" not in posixpath.basename(p).lower())
    # a split model counts once, by its first part
    firsts = [p for p in ggufs if (parts := split_parts(posixpath.basename(p))) is None
              or posixpath.basename(p) == parts[0]]
    if not firsts:
        raise ModelNotFoundError(f"{ref}: {listing.repo} has no GGUF files")
    wanted = [ref.quant] if ref.quant else list(DEFAULT_QUANTS)
    for quant in wanted:
        found = [p for p in firsts if quant_matches(p, quant)]
        if found:
            return min(found, key=lambda p: (len(p), p))  # 'x-Q4_K_M.gguf' before 'x-Q4_K_M-imat.gguf'
    if ref.quant is None and len(firsts) == 1:
        return firsts[0]
    choices = ", ".join(posixpath.basename(p) for p in firsts[:20]) + (", ..." if len(firsts) > 20 else "")
    what = f"no GGUF file for quant {ref.quant!r}" if ref.quant else \
        f"several GGUF files and none is {' or '.join(DEFAULT_QUANTS)}: name one with :<quant>"
    raise ModelNotFoundError(f"{ref}: {listing.repo} has {what}; files: {choices}")


def file_url(repo: str, path: str, revision: str) -> str:
    from huggingface_hub import hf_hub_url
    return hf_hub_url(repo, path, revision=revision, endpoint=endpoint())


def tasks_for(ref: ModelRef, directory: Path, hf_token: str | None = None) -> list[FileTask]:
    """What to fetch for an hf: reference: the file, or every part of a split one (named from any
    part), each with its size and sha256 from the Hub."""
    hf_token = hf_token if hf_token is not None else token()
    listing = repo_listing(ref.repo, ref.revision, hf_token)
    path = pick_file(listing, ref)
    folder, name = posixpath.split(path)
    parts = split_parts(name)
    paths = [posixpath.join(folder, p) for p in parts] if parts else [path]
    missing = [p for p in paths if p not in listing.files]
    if missing:
        raise ModelNotFoundError(f"{ref}: {listing.repo} lacks part(s) {', '.join(missing)} of the split model {path}")
    tasks = []
    for p in paths:
        f = listing.files[p]
        info = {"source": "hf", "repo": listing.repo, "revision": listing.revision, "commit": listing.commit,
                "path_in_repo": p, "quant": ref.quant, "default_pick": ref.quant is None and ref.file is None}
        name = safe_filename(posixpath.basename(p), f"{listing.repo} listing")
        tasks.append(FileTask(url=file_url(listing.repo, p, listing.revision), dest=directory / name,
                              size=f.size, sha256=f.sha256, token=hf_token, info=info))
    return tasks
