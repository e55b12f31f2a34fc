# C declarations of kernels/gk.h, for the Cython modules that call the kernels.
from libc.stdint cimport int64_t

cdef extern from "gk.h" nogil:
    ctypedef enum gk_simd_level:
        GK_SIMD_GENERIC
        GK_SIMD_AVX2
        GK_SIMD_AVX512
        GK_SIMD_COUNT

    ctypedef struct gk_ops:
        float (*dot_f32)(const float *x, const float *y, int64_t n) noexcept nogil

    gk_ops gk_active
    gk_simd_level gk_active_level
    gk_simd_level gk_simd_detect()
    const char *gk_simd_name(gk_simd_level level)
    int gk_select(gk_simd_level level)
