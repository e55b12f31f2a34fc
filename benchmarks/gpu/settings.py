"""Environment settings of the GPU benchmark scripts: VAR=VALUE pairs joined by "&" (tune_decode.py's
--settings, vulkan.py --kernel-settings), and a block run with variables set, then put back."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def parse(setting: str) -> dict[str, str]:
    """'A=1&B=x' as {'A': '1', 'B': 'x'}; '' as {}."""
    return {name: value for name, _, value in (part.partition("=") for part in setting.split("&") if part)}


def _put(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """The block runs with these variables set (None: unset), then they are as they were."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _put(name, value)
        yield
    finally:
        for name, value in saved.items():
            _put(name, value)
