/* CPU feature detection and the kernel dispatch table. */
#include "gk.h"

static const gk_ops ops_by_level[GK_SIMD_COUNT] = {
    [GK_SIMD_GENERIC] = {.dot_f32 = dot_f32},
#if defined(__x86_64__)
    [GK_SIMD_AVX2] = {.dot_f32 = dot_f32_avx2},
    [GK_SIMD_AVX512] = {.dot_f32 = dot_f32_avx512},
#endif
};

gk_ops gk_active = {.dot_f32 = dot_f32};
gk_simd_level gk_active_level = GK_SIMD_GENERIC;

gk_simd_level gk_simd_detect(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* __builtin_cpu_supports also checks that the OS saves the wide registers. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni"))
        return GK_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return GK_SIMD_AVX2;
#endif
    return GK_SIMD_GENERIC;
}

const char *gk_simd_name(gk_simd_level level) {
    static const char *names[GK_SIMD_COUNT] = {"generic", "avx2", "avx512"};
    return (unsigned)level < GK_SIMD_COUNT ? names[level] : "unknown";
}

int gk_select(gk_simd_level level) {
    if ((unsigned)level >= GK_SIMD_COUNT || level > gk_simd_detect() || !ops_by_level[level].dot_f32)
        return -1;
    gk_active = ops_by_level[level];
    gk_active_level = level;
    return 0;
}
