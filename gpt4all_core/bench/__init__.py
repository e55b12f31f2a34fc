"""`gpt4all-core bench`: model tokens/s (llama-bench's tests and fields), kernels against the
roofline, a comparison with llama.cpp, and plots of saved results.

    from gpt4all_core.bench import run_models, run_kernels
"""
from __future__ import annotations

from gpt4all_core.bench.devices import BenchError, parse_devices
from gpt4all_core.bench.kernels import run_kernels
from gpt4all_core.bench.model import run_models

__all__ = ["BenchError", "parse_devices", "run_kernels", "run_models"]
