"""What every benchmark result records about where it ran (moved to gpt4all_core.bench.machine)."""
from __future__ import annotations

from gpt4all_core.bench.machine import machine

__all__ = ["machine"]
