/* Half and bfloat16 conversions in plain C (the generic kernels run on any x86-64, so no F16C there;
 * files built with F16C, the SIMD variants, convert single halves with it). Exact IEEE semantics: round to nearest even, subnormals,
 * infinities and NaN kept. */
#ifndef GK_FP16_H
#define GK_FP16_H

#include <stdint.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

typedef uint16_t gk_fp16;
typedef uint16_t gk_bf16;

static inline float gk_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t gk_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float gk_fp16_to_fp32(gk_fp16 h) {
#if defined(__F16C__)
    return _cvtsh_ss(h); /* the SIMD files are built with F16C */
#else
    /* Shift the half's exponent and mantissa into float position and rescale by 2^112 to fix the
     * exponent bias; Inf/NaN map apart. Half subnormals (K-quant scales often are: Q6_K's d of
     * real models sits near 1e-5) are their mantissa times 2^-24, computed from the integer: an
     * fp32 subnormal in a multiply costs a microcode assist (hundreds of cycles) on x86. */
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t rest = (uint32_t)(h & 0x7fff) << 13;
    if ((h & 0x7c00) == 0x7c00)
        return gk_bits_to_f32(sign | 0x7f800000 | rest);
    if ((h & 0x7c00) == 0)
        return gk_bits_to_f32(sign | gk_f32_to_bits((float)(h & 0x3ff) * 0x1p-24f));
    return gk_bits_to_f32(sign | gk_f32_to_bits(gk_bits_to_f32(rest) * 0x1p112f));
#endif
}

static inline gk_fp16 gk_fp32_to_fp16(float f) {
    const uint32_t x = gk_f32_to_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) /* NaN: keep it quiet */
        return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff);
    if (ax >= 0x477ff000) /* rounds to >= 65520: infinity */
        return sign | 0x7c00;
    if (ax < 0x38800000) { /* below the smallest normal half: a subnormal, by adding 0.5 (RNE in FP) */
        const float r = gk_bits_to_f32(ax) + 0.5f;
        return sign | (uint16_t)(gk_f32_to_bits(r) - gk_f32_to_bits(0.5f));
    }
    /* normal: rebias, then round the 13 dropped bits to nearest even */
    const uint32_t odd = (ax >> 13) & 1;
    return sign | (uint16_t)((ax + 0xc8000fff + odd) >> 13);
}

static inline float gk_bf16_to_fp32(gk_bf16 h) { return gk_bits_to_f32((uint32_t)h << 16); }

static inline gk_bf16 gk_fp32_to_bf16(float f) {
    const uint32_t u = gk_f32_to_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) /* NaN: force quiet */
        return (gk_bf16)((u >> 16) | 64);
    return (gk_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

#endif
