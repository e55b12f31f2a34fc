"""The backends' environment switches (A/B runs, comparisons): one reader, so that every switch
takes its values the same way and refuses anything else by name."""
from __future__ import annotations

import os


def choice(variable: str, default: str, other: str) -> str:
    """$variable's value, default when unset or empty; anything but the two is refused by name."""
    value = os.environ.get(variable, default).strip() or default
    if value not in (default, other):
        raise ValueError(f"${variable}: {value!r} is not {default!r} or {other!r}")
    return value


def flag(variable: str, default: bool) -> bool:
    """$variable as "0" or "1", default when unset or empty; anything else is refused by name."""
    return choice(variable, "1" if default else "0", "0" if default else "1") == "1"
