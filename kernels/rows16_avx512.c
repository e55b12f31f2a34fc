/* Rows16 products on AVX-512 VNNI (rows16.c has the layout and the generic form, whose bits these
 * are): one group of 16 interleaved Q4_1 rows by n Q8_0S activation rows, up to 8 at a time, a
 * lane per weight row. */
#include <immintrin.h>

#include "quants.h"

enum { BLOCK_BYTES = 16 * (int)sizeof(block_q4_1), MAX_J = 8 };

/* J activation rows (a constant after inlining) against the group, every row block by block */
static inline __attribute__((always_inline)) void rows16_tile(const int J, const uint8_t *group, int64_t nb,
                                                               const char *act, int64_t a_row, float *out,
                                                               int64_t ldy) {
    __m512 acc[MAX_J];
    for (int j = 0; j < J; j++) acc[j] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *g = group + b * BLOCK_BYTES;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
        const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + 32)));
        __m512i q[8]; /* q[w]: elements 4w..4w+3 of each row, q[w + 4]: 16 + 4w.. */
        for (int w = 0; w < 4; w++) {
            const __m512i v = _mm512_loadu_si512(g + 64 + 64 * w);
            q[w] = _mm512_and_si512(v, low);
            q[w + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        }
        for (int j = 0; j < J; j++) {
            const block_q8_0s *a = (const block_q8_0s *)(act + j * a_row) + b;
            int32_t words[8];
            memcpy(words, a->qs, sizeof(words));
            __m512i dot = _mm512_setzero_si512();
            for (int w = 0; w < 8; w++) dot = _mm512_dpbusd_epi32(dot, q[w], _mm512_set1_epi32(words[w]));
            const float dy = _cvtsh_ss(a->d), dys = dy * (float)a->s;
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(d, _mm512_set1_ps(dy)), acc[j]);
            acc[j] = _mm512_fmadd_ps(m, _mm512_set1_ps(dys), acc[j]);
        }
    }
    for (int j = 0; j < J; j++) _mm512_storeu_ps(out + j * ldy, acc[j]);
}

void rows16_q4_1_avx512(const void *group, int64_t nb, const void *act, int64_t a_row, int64_t n, float *out,
                        int64_t ldy) {
    const char *a = act;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) rows16_tile(8, group, nb, a + j * a_row, a_row, out + j * ldy, ldy);
    if (n - j >= 4) {
        rows16_tile(4, group, nb, a + j * a_row, a_row, out + j * ldy, ldy);
        j += 4;
    }
    for (; j < n; j++) rows16_tile(1, group, nb, a + j * a_row, a_row, out + j * ldy, ldy);
}
