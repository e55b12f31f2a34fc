/* AVX-512 dot products (the quantized types use the AVX2 ones at this level too, for now). */
#include "simd_avx512.h"

/* Rows per pass of the rows forms below. Measured on the 2-core Sapphire Rapids VM: 2 rows beat 1 by
 * ~10% from DRAM; 4 rows compute faster in cache but not from DRAM (more streams to prefetch). */
#ifndef ROWS
#define ROWS 2
#endif

/* as in vec_dot_avx2.c: the weights stream from DRAM once, ask for them 2 KiB ahead */
#define PREFETCH_WEIGHTS(p) _mm_prefetch((const char *)(p) + 2048, _MM_HINT_T0)

void vec_dot_f32_f32_avx512(int64_t n, float *restrict s, const void *restrict x, const void *restrict y) {
    *s = dot_f32_avx512(x, y, n);
}

void vec_dot_f16_f32_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const gk_fp16 *x = vx;
    const float *y = vy;
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        PREFETCH_WEIGHTS(x + i);
        for (int k = 0; k < 2; k++) {
            const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16 * k)));
            acc[k] = _mm512_fmadd_ps(w, _mm512_loadu_ps(y + i + 16 * k), acc[k]);
        }
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
    for (; i < n; i++) sum += gk_fp16_to_fp32(x[i]) * y[i];
    *s = sum;
}

/* R consecutive weight rows (row_bytes apart) against one activation row: the activation loads,
 * their block sums and scales are shared, which is most of the per-block work besides the weights.
 * Consecutive rows are adjacent, so "ahead" for the prefetch is the same place R rows on. */
#define MAX_ROWS 4

static inline __attribute__((always_inline)) void rows_dot(const int R, const block_kind kind, int64_t n,
                                                            float *restrict s, const char *restrict x0,
                                                            int64_t row_bytes, const char *restrict y) {
    const int has_min = has_min_of(kind);
    const int block_bytes = block_bytes_of(kind);
    /* kinds with a min take Q8_0S activations (their block sums come along), the others Q8_0 */
    const int y_bytes = has_min ? (int)sizeof(block_q8_0s) : (int)sizeof(block_q8_0), y_qs = has_min ? 4 : 2;
    const int64_t nb = n / QK8_0;
    __m512 acc[MAX_ROWS];
    __m128 acc_m[MAX_ROWS];
    for (int r = 0; r < R; r++) {
        acc[r] = _mm512_setzero_ps();
        acc_m[r] = _mm_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const char *y4 = y + i * y_bytes;
        const __m128 dy = _mm_cvtph_ps(halves_of_4_blocks(y4, y_bytes, 0));
        /* Q8_0S: the four blocks' sums of levels, times their scales: m sum(a) = m * (dy * s) */
        const __m128 dys = has_min ? _mm_mul_ps(dy, _mm_cvtepi32_ps(_mm_cvtepi16_epi32(halves_of_4_blocks(y4, y_bytes, 2))))
                                   : dy;
        __m512 d[MAX_ROWS][2];
        for (int r = 0; r < R; r++) {
            const char *xr = x0 + r * row_bytes + i * block_bytes;
            for (int line = 0; line < 4 * block_bytes; line += 64) _mm_prefetch(xr + R * row_bytes + line, _MM_HINT_T0);
            spread_x4(_mm_mul_ps(_mm_cvtph_ps(halves_of_4_blocks(xr, block_bytes, 0)), dy), &d[r][0], &d[r][1]);
            if (has_min) acc_m[r] = _mm_fmadd_ps(_mm_cvtph_ps(halves_of_4_blocks(xr, block_bytes, 2)), dys, acc_m[r]);
        }
        for (int h = 0; h < 2; h++) {
            const int64_t b = i + 2 * h;
            const int8_t *ya = (const int8_t *)(y + b * y_bytes + y_qs);
            const __m512i a = load_x2(ya, ya + y_bytes);
            const __m512i sa_off = offset_sums(kind, a);
            for (int r = 0; r < R; r++)
                acc[r] = _mm512_fmadd_ps(d[r][h], pair_dot(kind, x0 + r * row_bytes + b * block_bytes, a, sa_off), acc[r]);
        }
    }
    for (; i + 2 <= nb; i += 2) { /* a pair left over (576 = 4 groups of 4 + a pair): scales gathered one by one */
        const char *y2 = y + i * y_bytes;
        const __m128 dy = _mm_cvtph_ps(halves_of_2_blocks(y2, y_bytes, 0));
        const __m128 dys = has_min ? _mm_mul_ps(dy, _mm_cvtepi32_ps(_mm_cvtepi16_epi32(halves_of_2_blocks(y2, y_bytes, 2))))
                                   : dy;
        const int8_t *ya = (const int8_t *)(y2 + y_qs);
        const __m512i a = load_x2(ya, ya + y_bytes);
        const __m512i sa_off = offset_sums(kind, a);
        for (int r = 0; r < R; r++) {
            const char *xr = x0 + r * row_bytes + i * block_bytes;
            __m512 d01, unused;
            spread_x4(_mm_mul_ps(_mm_cvtph_ps(halves_of_2_blocks(xr, block_bytes, 0)), dy), &d01, &unused);
            if (has_min) acc_m[r] = _mm_fmadd_ps(_mm_cvtph_ps(halves_of_2_blocks(xr, block_bytes, 2)), dys, acc_m[r]);
            acc[r] = _mm512_fmadd_ps(d01, pair_dot(kind, xr, a, sa_off), acc[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        s[r] = _mm512_reduce_add_ps(acc[r]);
        if (has_min) {
            const __m128 h2 = _mm_add_ps(acc_m[r], _mm_movehl_ps(acc_m[r], acc_m[r]));
            s[r] += _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
        }
        if (i < nb) /* one block left: the AVX2 single-row form */
            s[r] += block_dot_avx2(kind, (nb - i) * QK8_0, x0 + r * row_bytes + i * block_bytes, y + i * y_bytes);
    }
}

#define ROWS_FORM(name, kind)                                                                                 \
    void vec_dot_rows_##name##_avx512(int64_t n, float *restrict s, const void *restrict x, int64_t row_bytes,  \
                                      const void *restrict y) {                                               \
        rows_dot(ROWS, kind, n, s, x, row_bytes, y);                                                         \
    }                                                                                                         \
    void vec_dot_##name##_avx512(int64_t n, float *restrict s, const void *restrict x, const void *restrict y) { \
        rows_dot(1, kind, n, s, x, 0, y);                                                                     \
    }

ROWS_FORM(q4_0_q8_0, KIND_Q4_0)
ROWS_FORM(q4_1_q8_0s, KIND_Q4_1)
ROWS_FORM(q5_0_q8_0, KIND_Q5_0)
ROWS_FORM(q5_1_q8_0s, KIND_Q5_1)
ROWS_FORM(iq4_nl_q8_0, KIND_IQ4_NL)

int gk_rows_avx512(void) { return ROWS; }

/* ---- activation quantizers (the rows every product reads) ----
 * quantize_row_q8_0 / _q8_0s of quantize.c, bit for bit: the absmax is order-free, x * id is the same
 * float product, and roundf (halves away from zero) is trunc(v + copysign(0.5 - 2^-25, v)) for every
 * |v| < 2^23 (the largest float below 0.5 keeps v + 0.49999997 below the next integer when v's
 * fraction is below one half; at exactly one half the sum rounds up to it). */
static inline void q8_block_avx512(const float *x, int8_t *qs, float *d_out, int *sum) {
    const __m512 a0 = _mm512_loadu_ps(x), a1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a0), _mm512_abs_ps(a1)));
    const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    const __m512 idv = _mm512_set1_ps(id), half = _mm512_set1_ps(0.49999997f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512i q[2];
    for (int h = 0; h < 2; h++) {
        const __m512 v = _mm512_mul_ps(h ? a1 : a0, idv);
        const __m512 bias = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(half),
                                                                _mm512_and_si512(_mm512_castps_si512(v), sign)));
        q[h] = _mm512_cvttps_epi32(_mm512_add_ps(v, bias));
        _mm_storeu_si128((__m128i *)(qs + 16 * h), _mm512_cvtepi32_epi8(q[h]));
    }
    *d_out = d;
    if (sum) *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q[0], q[1]));
}

void quantize_row_q8_0_avx512(const float *restrict x, void *restrict vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float d;
        q8_block_avx512(x, y[i].qs, &d, NULL);
        y[i].d = gk_fp32_to_fp16(d);
    }
}

void quantize_row_q8_0s_avx512(const float *restrict x, void *restrict vy, int64_t n) {
    block_q8_0s *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float d;
        int sum;
        q8_block_avx512(x, y[i].qs, &d, &sum);
        y[i].d = gk_fp32_to_fp16(d);
        y[i].s = (int16_t)sum;
    }
}

