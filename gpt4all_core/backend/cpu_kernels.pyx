# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The CPU kernels of kernels/, called with the GIL released.

The SIMD level is picked once at import: the best the CPU supports, or the one
named by the environment variable GPT4ALL_CORE_SIMD (generic, avx2, avx512).
"""
import os

SIMD_LEVELS = tuple(gk_simd_name(<gk_simd_level>i).decode() for i in range(GK_SIMD_COUNT))


def supported_simd_levels():
    """The SIMD levels this CPU can run, from generic up to the best."""
    return SIMD_LEVELS[: gk_simd_detect() + 1]


def simd_level():
    """The SIMD level the kernels use now."""
    return gk_simd_name(gk_active_level).decode()


def select_simd(str name):
    """Use the kernels of SIMD level ``name``; ValueError if the CPU lacks it."""
    if name not in SIMD_LEVELS:
        raise ValueError(f"unknown SIMD level {name!r}; choose one of {', '.join(SIMD_LEVELS)}")
    cdef int level = SIMD_LEVELS.index(name)
    if gk_select(<gk_simd_level>level) != 0:
        raise ValueError(f"this CPU cannot run {name!r} kernels; it supports {', '.join(supported_simd_levels())}")


def dot_f32(const float[::1] x, const float[::1] y):
    """x · y for two float32 vectors of equal length."""
    cdef int64_t n = x.shape[0]
    cdef float result = 0
    if y.shape[0] != n:
        raise ValueError(f"dot_f32: lengths differ ({n} and {y.shape[0]})")
    if n:
        with nogil:
            result = gk_active.dot_f32(&x[0], &y[0], n)
    return result


include "quants.pxi"  # quantized types: dequantize, quantize, dot products, matmul
include "ops.pxi"  # the other ops: norms, RoPE, softmax, attention, activations
include "decoder.pxi"  # the decoder forward pass over a KV cache, one C call per batch
include "encoder.pxi"  # the BERT encoder forward pass over packed sequences, pooling included


select_simd(os.environ.get("GPT4ALL_CORE_SIMD") or SIMD_LEVELS[gk_simd_detect()])
