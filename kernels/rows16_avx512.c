/* Rows16 products on AVX-512 VNNI (rows16.c has the layout and the generic forms, whose bits these
 * are): one group of 16 interleaved rows by n Q8_0S activation rows, up to 8 at a time, a lane per
 * weight row. */
#include <immintrin.h>

#include "quants.h"

enum { MAX_J = 8 };

/* J activation rows against the group, every row block by block; type and J are constants after
 * inlining, so each (type, J) is its own loop with no branches on either */
static inline __attribute__((always_inline)) void rows16_tile(const int type, const int J, const uint8_t *group,
                                                               int64_t nb, const char *act, int64_t a_row,
                                                               float *out, int64_t ldy) {
    const int bytes = gk_rows16_block_bytes(type), qo = gk_rows16_quant_offset(type);
    /* the integer offset each type's dot carries, per unit of the activation sum s (rows16.c) */
    const int shift = type == GK_TYPE_Q4_0 ? 3 : type == GK_TYPE_Q8_0 ? 7 : 0;
    __m512 acc[MAX_J];
    for (int j = 0; j < J; j++) acc[j] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *g = group + b * bytes;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
        __m512 m = _mm512_setzero_ps();
        if (type == GK_TYPE_Q4_1) m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + 32)));
        __m512i q[8]; /* q[w]: elements 4w..4w+3 of each row (4-bit types: q[w + 4] has 16 + 4w..) */
        if (type == GK_TYPE_Q8_0) {
            for (int w = 0; w < 8; w++) q[w] = _mm512_loadu_si512(g + qo + 64 * w);
        } else {
            for (int w = 0; w < 4; w++) {
                const __m512i v = _mm512_loadu_si512(g + qo + 64 * w);
                q[w] = _mm512_and_si512(v, low);
                q[w + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
            }
        }
        for (int j = 0; j < J; j++) {
            const block_q8_0s *a = (const block_q8_0s *)(act + j * a_row) + b;
            int32_t words[8];
            memcpy(words, a->qs, sizeof(words));
            __m512i dot = _mm512_setzero_si512();
            for (int w = 0; w < 8; w++) dot = _mm512_dpbusd_epi32(dot, q[w], _mm512_set1_epi32(words[w]));
            const float dy = _cvtsh_ss(a->d);
            if (shift) dot = _mm512_sub_epi32(dot, _mm512_set1_epi32((int32_t)a->s * (1 << shift)));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(d, _mm512_set1_ps(dy)), acc[j]);
            if (type == GK_TYPE_Q4_1) acc[j] = _mm512_fmadd_ps(m, _mm512_set1_ps(dy * (float)a->s), acc[j]);
        }
    }
    for (int j = 0; j < J; j++) _mm512_storeu_ps(out + j * ldy, acc[j]);
}

/* Tiles of 8 activation rows, then one of 4, then single rows */
static inline __attribute__((always_inline)) void rows16_avx512(const int type, const void *group, int64_t nb,
                                                                 const void *act, int64_t a_row, int64_t n,
                                                                 float *out, int64_t ldy) {
    const char *a = act;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) rows16_tile(type, 8, group, nb, a + j * a_row, a_row, out + j * ldy, ldy);
    if (n - j >= 4) {
        rows16_tile(type, 4, group, nb, a + j * a_row, a_row, out + j * ldy, ldy);
        j += 4;
    }
    for (; j < n; j++) rows16_tile(type, 1, group, nb, a + j * a_row, a_row, out + j * ldy, ldy);
}

GK_ROWS16_ENTRY(q4_0, avx512, rows16_avx512, GK_TYPE_Q4_0)
GK_ROWS16_ENTRY(q4_1, avx512, rows16_avx512, GK_TYPE_Q4_1)
GK_ROWS16_ENTRY(q8_0, avx512, rows16_avx512, GK_TYPE_Q8_0)
