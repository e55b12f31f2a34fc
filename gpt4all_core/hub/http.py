"""HTTP for the hub: one httpx client configuration and one translation of failures into the
errors of gpt4all_core.errors, each naming the URL."""
from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from gpt4all_core import __version__
from gpt4all_core.errors import AuthenticationError, DownloadError, ModelNotFoundError

USER_AGENT = f"gpt4all-core/{__version__}"
# connect fails fast when there is no network; a stalled read is given longer before a retry
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def client(**kwargs) -> httpx.Client:
    """A client that follows redirects (the Hub's /resolve/ redirects to its CDN; httpx drops the
    Authorization header when a redirect leaves the host, so a token never reaches the CDN)."""
    kwargs.setdefault("timeout", TIMEOUT)
    return httpx.Client(follow_redirects=True, headers={"User-Agent": USER_AGENT}, **kwargs)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def is_http_library_error(e: BaseException) -> bool:
    """An exception of httpx, or of httpx2 (which huggingface_hub 2.x uses instead)."""
    return type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")


def transport_error(e: Exception, url: str, path=None) -> DownloadError:
    """A DownloadError for a network failure (no connection, timeout, dropped connection). Told
    apart by class name, so that httpx and httpx2 errors read the same."""
    names = {c.__name__ for c in type(e).__mro__}
    if "ConnectError" in names:
        return DownloadError(f"cannot connect to {host_of(url)} ({e}): no network, or the server is down; "
                             f"while fetching {url}", url=url, path=path)
    if "TimeoutException" in names:
        return DownloadError(f"{host_of(url)} did not answer in time ({type(e).__name__}) while fetching {url}",
                             url=url, path=path)
    return DownloadError(f"network error while fetching {url}: {type(e).__name__}: {e}", url=url, path=path)


def status_error(response: httpx.Response, url: str, path=None, has_token: bool = False) -> Exception:
    """The error for an HTTP error status, with the Hub's own explanation when it sent one."""
    code = response.status_code
    hub_code = response.headers.get("X-Error-Code", "")
    hub_message = response.headers.get("X-Error-Message", "")
    detail = f" ({hub_message})" if hub_message else ""
    if code in (401, 403) or hub_code == "GatedRepo":
        if hub_code == "GatedRepo" or code == 403:
            hint = ("the repository is gated: accept its terms on the Hub with your account" +
                    (", then check that HF_TOKEN (or ~/.cache/huggingface/token) is that account's token"
                     if has_token else ", then set HF_TOKEN or log in (`hf auth login`)"))
        elif hub_code == "RepoNotFound":
            return ModelNotFoundError(f"HTTP {code} for {url}: no such repository, or it is private"
                                      f"{' and the token cannot see it' if has_token else ' (set HF_TOKEN)'}{detail}")
        else:
            hint = "the server wants credentials" + ("; the token sent was refused" if has_token
                                                     else ": set HF_TOKEN for Hugging Face")
        return AuthenticationError(f"HTTP {code} for {url}: {hint}{detail}", url=url, path=path)
    if code == 404:
        what = {"EntryNotFound": "no such file in the repository", "RepoNotFound": "no such repository",
                "RevisionNotFound": "no such branch, tag or commit"}.get(hub_code, "not found")
        return DownloadError(f"HTTP 404 for {url}: {what}{detail}", url=url, path=path)
    return DownloadError(f"HTTP {code} {response.reason_phrase} for {url}{detail}", url=url, path=path)
