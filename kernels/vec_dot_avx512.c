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

/* Two 32-element blocks per 512-bit register; VNNI's dpbusd multiplies u8 by s8 and sums groups of
 * four into int32 in one instruction. The prefetch is the AVX2 file's, for the same reason. */
#define FP16(h) _cvtsh_ss(h)
#define PREFETCH_WEIGHTS(p) _mm_prefetch((const char *)(p) + 2048, _MM_HINT_T0)

/* the nibbles of two blocks as bytes: [A low, A high, B low, B high], each 16 elements */
static inline __m512i nibbles_to_bytes_x2(const uint8_t *a, const uint8_t *b) {
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                              _mm_loadu_si128((const __m128i *)b), 1);
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    const __m512i m = _mm512_and_si512(w, _mm512_set1_epi8(0x0F));
    return _mm512_shuffle_i64x2(m, m, _MM_SHUFFLE(3, 1, 2, 0));
}

static inline __m512i load_x2(const int8_t *a, const int8_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* [fa x 8, fb x 8] */
static inline __m512 scales_x2(float fa, float fb) {
    return _mm512_insertf32x8(_mm512_set1_ps(fa), _mm256_set1_ps(fb), 1);
}

void vec_dot_q4_0_q8_0_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        PREFETCH_WEIGHTS(x + i);
        const __m512i q = nibbles_to_bytes_x2(x[i].qs, x[i + 1].qs);
        const __m512i a = load_x2(y[i].qs, y[i + 1].qs);
        /* (q - 8).a = q.a - 8 * sum(a) */
        const __m512i qa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, a);
        const __m512i sa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, a);
        const __m512i dot = _mm512_sub_epi32(qa, _mm512_slli_epi32(sa, 3));
        const __m512 d = scales_x2(FP16(x[i].d) * FP16(y[i].d), FP16(x[i + 1].d) * FP16(y[i + 1].d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(dot), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (i < nb) { /* an odd block count: the last one the generic way */
        float last;
        vec_dot_q4_0_q8_0(QK8_0, &last, x + i, y + i);
        sum += last;
    }
    *s = sum;
}

void vec_dot_q4_1_q8_0_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_1 *x = vx;
    const block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 acc = _mm512_setzero_ps(), acc_m = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        PREFETCH_WEIGHTS(x + i);
        const __m512i q = nibbles_to_bytes_x2(x[i].qs, x[i + 1].qs);
        const __m512i a = load_x2(y[i].qs, y[i + 1].qs);
        const __m512i qa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, a);
        const __m512i sa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, a);
        const float dy0 = FP16(y[i].d), dy1 = FP16(y[i + 1].d);
        acc = _mm512_fmadd_ps(scales_x2(FP16(x[i].d) * dy0, FP16(x[i + 1].d) * dy1), _mm512_cvtepi32_ps(qa), acc);
        acc_m = _mm512_fmadd_ps(scales_x2(FP16(x[i].m) * dy0, FP16(x[i + 1].m) * dy1), _mm512_cvtepi32_ps(sa), acc_m);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc, acc_m));
    if (i < nb) {
        float last;
        vec_dot_q4_1_q8_0(QK8_0, &last, x + i, y + i);
        sum += last;
    }
    *s = sum;
}
