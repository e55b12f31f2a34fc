/* AVX-512 dot products (the quantized types use the AVX2 ones at this level too, for now). */
#include <immintrin.h>

#include "quants.h"

void vec_dot_f32_f32_avx512(int64_t n, float *restrict s, const void *restrict x, const void *restrict y) {
    *s = dot_f32_avx512(x, y, n);
}

void vec_dot_f16_f32_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const gk_fp16 *x = vx;
    const float *y = vy;
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 2; k++) {
            const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16 * k)));
            acc[k] = _mm512_fmadd_ps(w, _mm512_loadu_ps(y + i + 16 * k), acc[k]);
        }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
    for (; i < n; i++) sum += gk_fp16_to_fp32(x[i]) * y[i];
    *s = sum;
}
