/* A prototype, not part of the engine: Q4_1 weights with 16 rows interleaved, so that one dpbusd
 * multiplies 4 quants of each of 16 rows by one broadcast activation word, and the conversion, the
 * scale multiply and the fma that follow serve 16 rows at once (the engine's 2 x 8 decode tile pays
 * them per row and pair of blocks). benchmarks/proto/rows16.py builds it, checks it against float64
 * and times it beside the engine's own product.
 *
 * Layout per group of 16 rows, per block b: 16 d (fp16), 16 m (fp16), then for word k = 0..3 the
 * 16 rows' qs word k (bytes 4k..4k+3: elements 4k..4k+3 in the low nibbles, 4k+16.. in the high):
 * 64 + 256 bytes a block, the 16 rows' bytes exactly (20 x 16 = 320). Activations: Q8_0S blocks
 * (fp16 d, int16 sum of levels, 32 int8 levels), as the engine quantizes them for Q4_1. */
#include <immintrin.h>
#include <stdint.h>

enum { GROUP_BYTES_PER_BLOCK = 320, MAX_J = 8 };

typedef struct { uint16_t d; int16_t s; int8_t qs[32]; } act_block;

/* out[j * ldy + r] for the 16 rows of one group and n <= MAX_J activation rows, over nb blocks;
 * every row summed block by block in the same order whatever n is */
static inline __attribute__((always_inline)) void group_tile(const int J, const uint8_t *w, int64_t nb,
                                                              const act_block *y, int64_t y_blocks,
                                                              float *out, int64_t ldy) {
    __m512 acc[MAX_J];
    for (int j = 0; j < J; j++) acc[j] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * GROUP_BYTES_PER_BLOCK;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)wb));
        const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wb + 32)));
        __m512i q[8];
        for (int k = 0; k < 4; k++) {
            const __m512i v = _mm512_loadu_si512(wb + 64 + 64 * k);
            q[k] = _mm512_and_si512(v, low);
            q[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        }
        for (int j = 0; j < J; j++) {
            const act_block *a = y + j * y_blocks + b;
            const int32_t *a32 = (const int32_t *)a->qs;
            __m512i dot = _mm512_setzero_si512();
            for (int k = 0; k < 4; k++) {
                dot = _mm512_dpbusd_epi32(dot, q[k], _mm512_set1_epi32(a32[k]));
                dot = _mm512_dpbusd_epi32(dot, q[k + 4], _mm512_set1_epi32(a32[k + 4]));
            }
            const float dy = _cvtsh_ss(a->d);
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(d, _mm512_set1_ps(dy)), acc[j]);
            acc[j] = _mm512_fmadd_ps(m, _mm512_set1_ps(dy * (float)a->s), acc[j]);
        }
    }
    for (int j = 0; j < J; j++) _mm512_storeu_ps(out + j * ldy, acc[j]);
}

/* y[j, i] = row i of the interleaved matrix (m rows, a multiple of 16) times activation row j */
void q4_1_rows16(const uint8_t *w, int64_t m, int64_t nb, const act_block *y, int64_t n, float *out) {
    for (int64_t g = 0; g < m / 16; g++) {
        const uint8_t *wg = w + g * nb * GROUP_BYTES_PER_BLOCK;
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) group_tile(8, wg, nb, y + j * nb, nb, out + j * m + 16 * g, m);
        for (; j + 4 <= n; j += 4) group_tile(4, wg, nb, y + j * nb, nb, out + j * m + 16 * g, m);
        for (; j < n; j++) group_tile(1, wg, nb, y + j * nb, nb, out + j * m + 16 * g, m);
    }
}
