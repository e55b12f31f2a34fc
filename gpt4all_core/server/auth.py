"""API keys, their request limits and token budgets, and the usage counted per key.

The key file is JSON (any text editor, no extra parser):

    {"keys": [
      {"key": "sk-alice-7f3a...", "name": "alice",
       "requests_per_minute": 60, "requests_per_day": 5000, "token_budget": 2000000},
      {"key": "sk-ci-0c1d...", "name": "ci"}
    ]}

`key` is what clients send as `Authorization: Bearer KEY`; `name` is how usage and logs refer to
it (never the key itself); every limit is optional (absent or null: none). The per-minute and
per-day limits count generation and embedding requests over a sliding window (the last 60 s, the
last 24 h); the token budget counts prompt plus completion tokens over the server's lifetime.
Usage lives in memory and starts at zero when the server starts.

Without a key file every request is allowed, and usage is counted under the name "local".
"""
from __future__ import annotations

import hmac
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from gpt4all_core.errors import GPT4AllCoreError
from gpt4all_core.server.errors import APIError

MINUTE, DAY = 60.0, 86400.0
LOCAL = "local"


class KeyFileError(GPT4AllCoreError, ValueError):
    """The key file is missing, is not JSON, or holds a bad entry (named)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    key: str = field(repr=False)
    requests_per_minute: int | None = None
    requests_per_day: int | None = None
    token_budget: int | None = None

    def limits(self) -> dict:
        return {"requests_per_minute": self.requests_per_minute, "requests_per_day": self.requests_per_day,
                "token_budget": self.token_budget}


ANONYMOUS = ApiKey(LOCAL, "")
_LIMITS = ("requests_per_minute", "requests_per_day", "token_budget")


def load_keys(path: str | Path) -> list[ApiKey]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the key file: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KeyFileError(f"{path}: not a JSON file: {e}") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(f'{path}: expected {{"keys": [{{"key": ..., "name": ...}}, ...]}} with at least one key')
    keys, names, secrets = [], set(), set()
    for i, entry in enumerate(entries):
        where = f"{path}: keys[{i}]"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where}: expected an object")
        unknown = set(entry) - {"key", "name", *_LIMITS}
        if unknown:
            raise KeyFileError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        key, name = entry.get("key"), entry.get("name", f"key-{i}")
        if not isinstance(key, str) or len(key) < 8 or any(c.isspace() for c in key):
            raise KeyFileError(f"{where}.key: expected a string of at least 8 characters without spaces")
        if not isinstance(name, str) or not name:
            raise KeyFileError(f"{where}.name: expected a non-empty string")
        if key in secrets or name in names:
            raise KeyFileError(f"{where}: {'key' if key in secrets else 'name'} given twice")
        limits = {}
        for lim in _LIMITS:
            v = entry.get(lim)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise KeyFileError(f"{where}.{lim}: expected a non-negative integer or null, got {v!r}")
            limits[lim] = v
        keys.append(ApiKey(name, key, **limits))
        names.add(name)
        secrets.add(key)
    return keys


@dataclass
class _Counter:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    minute: deque = field(default_factory=deque)  # request times of the last minute
    day: deque = field(default_factory=deque)     # ... and of the last day


class Gate:
    """Who is asking (authenticate), whether they may (admit), and what they used (record)."""

    def __init__(self, keys: list[ApiKey] | None = None, clock=time.monotonic):
        self.keys = keys
        self._clock = clock
        self._lock = threading.Lock()
        self._usage: dict[str, _Counter] = {}

    @property
    def required(self) -> bool:
        return self.keys is not None

    def authenticate(self, authorization: str | None) -> ApiKey:
        if self.keys is None:
            return ANONYMOUS
        if not authorization:
            raise APIError(401, "You didn't provide an API key. You need to provide your API key in an Authorization "
                                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", code="missing_api_key")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        found = None
        for k in self.keys:  # compare with every key in constant time: no timing hints about near misses
            if hmac.compare_digest(k.key.encode(), token.encode()) and scheme.lower() == "bearer":
                found = k
        if found is None:
            shown = token[:3] + "*" * 4 + token[-4:] if len(token) > 8 else "*" * 4
            raise APIError(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")
        return found

    def admit(self, key: ApiKey) -> None:
        """Counts one request against key's limits; a 429 with Retry-After when it is over one."""
        now = self._clock()
        with self._lock:
            c = self._usage.setdefault(key.name, _Counter())
            for window, span in ((c.minute, MINUTE), (c.day, DAY)):
                while window and window[0] <= now - span:
                    window.popleft()
            for window, span, limit, what in ((c.minute, MINUTE, key.requests_per_minute, "minute"),
                                              (c.day, DAY, key.requests_per_day, "day")):
                if limit is not None and len(window) >= limit:
                    wait = max(1, math.ceil(window[0] + span - now)) if window else int(span)
                    raise APIError(429, f"Rate limit reached for {key.name}: {limit} requests per {what}. "
                                        f"Try again in {wait} s.", type="requests", code="rate_limit_exceeded",
                                   headers={"Retry-After": str(wait)})
            if key.token_budget is not None and c.prompt_tokens + c.completion_tokens >= key.token_budget:
                raise APIError(429, f"You exceeded your token budget ({key.token_budget} tokens) for {key.name}.",
                               type="insufficient_quota", code="insufficient_quota")
            c.minute.append(now)
            c.day.append(now)
            c.requests += 1

    def record(self, key: ApiKey, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            c = self._usage.setdefault(key.name, _Counter())
            c.prompt_tokens += prompt_tokens
            c.completion_tokens += completion_tokens

    def usage(self, key: ApiKey) -> dict:
        now = self._clock()
        with self._lock:
            c = self._usage.get(key.name, _Counter())
            last_minute = sum(t > now - MINUTE for t in c.minute)
            last_day = sum(t > now - DAY for t in c.day)
            total = c.prompt_tokens + c.completion_tokens
            return {
                "object": "usage", "key": key.name, "requests": c.requests,
                "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "total_tokens": total,
                "requests_last_minute": last_minute, "requests_last_day": last_day,
                "limits": key.limits(),
                "remaining": {
                    "requests_this_minute": None if key.requests_per_minute is None
                    else max(0, key.requests_per_minute - last_minute),
                    "requests_today": None if key.requests_per_day is None
                    else max(0, key.requests_per_day - last_day),
                    "tokens": None if key.token_budget is None else max(0, key.token_budget - total),
                },
            }
