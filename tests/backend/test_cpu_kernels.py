"""The first C kernel through Cython: each SIMD variant against float64 numpy."""
from __future__ import annotations

import collections
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from gpt4all_core.backend import cpu_kernels

LEVELS = cpu_kernels.supported_simd_levels()


@pytest.mark.parametrize("n", [1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 1000, 4097])
def test_dot_f32_matches_float64(simd, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    exact = x.astype(np.float64) @ y.astype(np.float64)
    # float32 accumulation: error grows at most like n·eps·Σ|xy|; blocked sums do far better
    bound = 4 * np.sqrt(n) * np.finfo(np.float32).eps * np.abs(x.astype(np.float64) * y).sum()
    assert abs(cpu_kernels.dot_f32(x, y) - exact) <= bound


def test_variants_agree_with_generic():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 4099)).astype(np.float32)
    results = {}
    for level in LEVELS:
        cpu_kernels.select_simd(level)
        results[level] = cpu_kernels.dot_f32(x, y)
    cpu_kernels.select_simd(LEVELS[-1])
    assert all(abs(r - results["generic"]) <= 1e-4 * abs(results["generic"]) + 1e-3 for r in results.values())


def test_bad_arguments():
    with pytest.raises(ValueError, match="lengths differ"):
        cpu_kernels.dot_f32(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="unknown SIMD level"):
        cpu_kernels.select_simd("sse9")
    assert cpu_kernels.dot_f32(np.ones(0, np.float32), np.ones(0, np.float32)) == 0


def test_environment_forces_a_level():
    out = subprocess.run(
        [sys.executable, "-c", "from gpt4all_core.backend import cpu_kernels as k; print(k.simd_level())"],
        env={**os.environ, "GPT4ALL_CORE_SIMD": "generic"}, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "generic"


def test_wide_registers_only_in_simd_variants():
    """One build runs on any x86-64: AVX code sits only in the *_avx2 / *_avx512 functions, which the
    dispatch table calls after CPUID said yes. (Any other function touching ymm/zmm would SIGILL on
    an older CPU.)"""
    if platform.machine() != "x86_64":
        pytest.fail("this check is written for x86-64 builds")
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", cpu_kernels.__file__],
                             capture_output=True, text=True, check=True).stdout
    wide = collections.Counter()
    function = None
    for line in listing.splitlines():
        if line.endswith(">:"):
            function = line.split("<", 1)[1][:-2]
        elif "%ymm" in line or "%zmm" in line:
            wide[function] += 1
    assert wide, "no AVX code at all: the SIMD variants were not built"
    assert all(name.endswith(("_avx2", "_avx512")) for name in wide), wide
