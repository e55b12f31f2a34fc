/* gpt4all-core kernels: the one header the Cython wrappers include.
 *
 * Each kernel has a generic C version (kernel_name) and, on x86-64, SIMD
 * variants beside it (kernel_name_avx2, kernel_name_avx512) in files built
 * with their own -m flags. The dispatch table below is filled once at load
 * from CPUID, so one binary runs on any x86-64 and uses the best it can. */
#ifndef GK_H
#define GK_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    GK_SIMD_GENERIC = 0,
    GK_SIMD_AVX2 = 1,   /* AVX2 + FMA + F16C */
    GK_SIMD_AVX512 = 2, /* AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Zen 4 and later) */
    GK_SIMD_COUNT
} gk_simd_level;

/* The best level this CPU and OS support. */
gk_simd_level gk_simd_detect(void);
const char *gk_simd_name(gk_simd_level level);

/* The functions of one SIMD level. */
typedef struct {
    float (*dot_f32)(const float *x, const float *y, int64_t n);
} gk_ops;

/* Active table; gk_select() switches it (tests force each level). Returns 0,
 * or -1 when the CPU lacks that level (the table is left as it was). */
extern gk_ops gk_active;
extern gk_simd_level gk_active_level;
int gk_select(gk_simd_level level);

float dot_f32(const float *x, const float *y, int64_t n);
float dot_f32_avx2(const float *x, const float *y, int64_t n);
float dot_f32_avx512(const float *x, const float *y, int64_t n);

#endif
