/* Matrix-matrix microkernels for prompt batches, AVX-512 VNNI, for the 32-element block types.
 *
 * A dot product per (weight row, activation row) unpacks every weight block once per activation
 * row; for a batch that unpacking, not the multiply, is most of the work. Here a register tile of
 * R weight rows by J activation rows shares it: each pair of weight blocks is made into bytes once
 * and dotted with J activation pairs, and each activation pair's loads and offset sums serve R
 * weight rows. Per weight-row-by-activation-row pair of blocks what is left is one dpbusd, one
 * conversion, one multiply of the two scales and one fused add.
 *
 * The activations are the weight type's vec_dot_type rows (Q8_0, or Q8_0S for the kinds with a
 * min), as gk_quantize_activations writes them, so Q, K and V still share one quantization. */
#include <stdlib.h>

#include "simd_avx512.h"

/* 12 accumulators. Measured at batch 512, 2048 x 2048: 4 x 3 beats 4 x 4 (which spills), 3 x 4, 3 x 5,
 * 2 x 6, 4 x 2 and 1 x 8. Two activation rows left over take one 4 x 2 tile rather than two 4 x 1
 * (batches of 8 decoding sequences: 3 + 3 + 2). Each (weight row, activation row) pair is summed in
 * the order of vec_dot_avx512.c's rows_dot, so both forms give a row the same bits. */
enum { TILE_R = 4, TILE_J = 3 };

/* lanes 0-3 and 8-11 of a nibble-order pair hold block A's sums, 4-7 and 12-15 block B's: the
 * permutes that spread four block scales over the lanes of the first and of the second pair */
static inline __m512 spread_pair(__m128 scales4, int pair) {
    const __m512i first = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    const __m512i second = _mm512_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2, 3, 3, 3, 3);
    return _mm512_permutexvar_ps(pair ? second : first, _mm512_castps128_ps512(scales4));
}

/* Q8_0's pairs are in natural order: lanes 0-7 block A, 8-15 block B */
static inline __m512 spread_pair_natural(__m128 scales4, int pair) {
    const __m512i first = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i second = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    return _mm512_permutexvar_ps(pair ? second : first, _mm512_castps128_ps512(scales4));
}

static inline __attribute__((always_inline)) __m512 spread(const block_kind kind, __m128 scales4, int pair) {
    return kind == KIND_Q8_0 ? spread_pair_natural(scales4, pair) : spread_pair(scales4, pair);
}

/* The products of R weight rows (row_bytes apart, from x) by J activation rows (y_row apart, from
 * y) over nb blocks, written to out[j * ldy + r]. R and J are constants after inlining. */
static inline __attribute__((always_inline)) void gemm_tile(const int R, const int J, const block_kind kind,
                                                             int64_t nb, const char *restrict x, int64_t row_bytes,
                                                             const char *restrict y, int64_t y_row, float *out,
                                                             int64_t ldy) {
    const int has_min = has_min_of(kind), bb = block_bytes_of(kind);
    const int y_bytes = has_min ? (int)sizeof(block_q8_0s) : (int)sizeof(block_q8_0), y_qs = has_min ? 4 : 2;
    __m512 acc[TILE_R][TILE_J];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < J; j++) acc[r][j] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m128 dw[TILE_R], dy[TILE_J];
        for (int r = 0; r < R; r++) dw[r] = _mm_cvtph_ps(halves_of_4_blocks(x + r * row_bytes + i * bb, bb, 0));
        for (int j = 0; j < J; j++) dy[j] = _mm_cvtph_ps(halves_of_4_blocks(y + j * y_row + i * y_bytes, y_bytes, 0));
        for (int h = 0; h < 2; h++) {
            const int64_t b = i + 2 * h;
            __m512i q[TILE_R];
            __m512 dws[TILE_R];
            for (int r = 0; r < R; r++) {
                q[r] = weight_bytes_x2(kind, x + r * row_bytes + b * bb);
                dws[r] = spread(kind, dw[r], h);
            }
            for (int j = 0; j < J; j++) {
                const __m512i a = act_x2(kind, (const int8_t *)(y + j * y_row + b * y_bytes + y_qs), y_bytes);
                const __m512i neg_off = _mm512_sub_epi32(_mm512_setzero_si512(), offset_sums(kind, a));
                const __m512 dys = spread(kind, dy[j], h);
                for (int r = 0; r < R; r++) {
                    const __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(neg_off, q[r], a));
                    acc[r][j] = _mm512_fmadd_ps(dot, _mm512_mul_ps(dws[r], dys), acc[r][j]);
                }
            }
        }
    }
    for (; i + 2 <= nb; i += 2) { /* a pair left over: scales gathered one by one */
        __m512 dws[TILE_R];
        __m512i q[TILE_R];
        for (int r = 0; r < R; r++) {
            const char *xr = x + r * row_bytes + i * bb;
            q[r] = weight_bytes_x2(kind, xr);
            dws[r] = spread(kind, _mm_cvtph_ps(halves_of_2_blocks(xr, bb, 0)), 0);
        }
        for (int j = 0; j < J; j++) {
            const char *yj = y + j * y_row + i * y_bytes;
            const __m512i a = act_x2(kind, (const int8_t *)(yj + y_qs), y_bytes);
            const __m512i neg_off = _mm512_sub_epi32(_mm512_setzero_si512(), offset_sums(kind, a));
            const __m512 dys = spread(kind, _mm_cvtph_ps(halves_of_2_blocks(yj, y_bytes, 0)), 0);
            for (int r = 0; r < R; r++) {
                const __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(neg_off, q[r], a));
                acc[r][j] = _mm512_fmadd_ps(dot, _mm512_mul_ps(dws[r], dys), acc[r][j]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < J; j++) {
            float s = _mm512_reduce_add_ps(acc[r][j]);
            if (i < nb && !has_min) /* one block left: the AVX2 single-row form (with a min: after the mins) */
                s += block_dot_avx2(kind, QK8_0, x + r * row_bytes + i * bb, y + j * y_row + i * y_bytes);
            out[j * ldy + r] = s;
        }
}

/* Q4_1, Q5_1: out[j * ldy + r] += sum over blocks b of m(r, b) * d(j, b) * s(j, b), the weight mins
 * times the activations' scaled block sums (Q8_0S), then the leftover odd block's whole dot. The
 * sums are vec_dot_avx512.c's rows_dot ones, in its order (4-lane accumulators over groups of four
 * blocks, a pair left over in lanes 0-1, the same horizontal sum), so that the matrix form gives
 * each row bit for bit what the dot gives it. Both sides' group vectors are made once per call (each
 * serves every row of the other side). Returns -1 when out of memory. */
static int add_min_terms(const block_kind kind, int64_t nb, const char *x, int64_t row_bytes, int64_t m,
                         const char *y, int64_t y_row, int64_t n, float *out, int64_t ldy, int bb) {
    const int64_t n_groups = nb / 4 + (nb % 4 >= 2), y_bytes = sizeof(block_q8_0s);
    /* small batches (decoding) on the stack: this runs once per 16-row weight tile, and malloc showed in profiles */
    __m128 local[1024];
    const int64_t need = n_groups * (m + n);
    __m128 *mins = need <= 1024 ? local : _mm_malloc(sizeof(__m128) * (size_t)need, 64), *dys = mins + n_groups * m;
    if (!mins) return -1;
    for (int64_t r = 0; r < m; r++) {
        const char *xr = x + r * row_bytes;
        int64_t i = 0, g = 0;
        for (; i + 4 <= nb; i += 4) mins[r * n_groups + g++] = _mm_cvtph_ps(halves_of_4_blocks(xr + i * bb, bb, 2));
        if (i + 2 <= nb) mins[r * n_groups + g] = _mm_cvtph_ps(halves_of_2_blocks(xr + i * bb, bb, 2));
    }
    for (int64_t j = 0; j < n; j++) {
        const char *yj = y + j * y_row;
        int64_t i = 0, g = 0;
        for (; i + 4 <= nb; i += 4) {
            const char *y4 = yj + i * y_bytes;
            dys[j * n_groups + g++] = _mm_mul_ps(_mm_cvtph_ps(halves_of_4_blocks(y4, y_bytes, 0)),
                                                 _mm_cvtepi32_ps(_mm_cvtepi16_epi32(halves_of_4_blocks(y4, y_bytes, 2))));
        }
        if (i + 2 <= nb) {
            const char *y2 = yj + i * y_bytes;
            dys[j * n_groups + g] = _mm_mul_ps(_mm_cvtph_ps(halves_of_2_blocks(y2, y_bytes, 0)),
                                               _mm_cvtepi32_ps(_mm_cvtepi16_epi32(halves_of_2_blocks(y2, y_bytes, 2))));
        }
    }
    const int64_t last = nb & ~(int64_t)1;
    for (int64_t j = 0; j < n; j++)
        for (int64_t r = 0; r < m; r++) {
            const __m128 *mr = mins + r * n_groups, *dj = dys + j * n_groups;
            __m128 acc = _mm_setzero_ps();
            for (int64_t g = 0; g < n_groups; g++) acc = _mm_fmadd_ps(mr[g], dj[g], acc);
            const __m128 h2 = _mm_add_ps(acc, _mm_movehl_ps(acc, acc));
            float s = out[j * ldy + r] + _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
            if (last < nb) /* one block left: the AVX2 single-row form */
                s += block_dot_avx2(kind, QK8_0, x + r * row_bytes + last * bb, y + j * y_row + last * y_bytes);
            out[j * ldy + r] = s;
        }
    if (mins != local) _mm_free(mins);
    return 0;
}

/* All rows of a weight tile by all activation rows: register tiles of TILE_R x TILE_J, with the
 * rows and activations left over taken one at a time. */
static inline __attribute__((always_inline)) int gemm(const block_kind kind, int64_t k, const char *x,
                                                        int64_t row_bytes, int64_t m, const char *y, int64_t y_row,
                                                        int64_t n, float *out, int64_t ldy) {
    const int64_t nb = k / QK8_0;
    int64_t j = 0;
    for (; j + TILE_J <= n; j += TILE_J) {
        int64_t r = 0;
        for (; r + TILE_R <= m; r += TILE_R)
            gemm_tile(TILE_R, TILE_J, kind, nb, x + r * row_bytes, row_bytes, y + j * y_row, y_row, out + j * ldy + r, ldy);
        for (; r < m; r++)
            gemm_tile(1, TILE_J, kind, nb, x + r * row_bytes, row_bytes, y + j * y_row, y_row, out + j * ldy + r, ldy);
    }
    if (j + 2 <= n) { /* two activation rows left: one tile of two unpacks the weights once for both */
        int64_t r = 0;
        for (; r + TILE_R <= m; r += TILE_R)
            gemm_tile(TILE_R, 2, kind, nb, x + r * row_bytes, row_bytes, y + j * y_row, y_row, out + j * ldy + r, ldy);
        for (; r < m; r++)
            gemm_tile(1, 2, kind, nb, x + r * row_bytes, row_bytes, y + j * y_row, y_row, out + j * ldy + r, ldy);
        j += 2;
    }
    for (; j < n; j++) {
        int64_t r = 0;
        for (; r + TILE_R <= m; r += TILE_R)
            gemm_tile(TILE_R, 1, kind, nb, x + r * row_bytes, row_bytes, y + j * y_row, y_row, out + j * ldy + r, ldy);
        for (; r < m; r++)
            gemm_tile(1, 1, kind, nb, x + r * row_bytes, row_bytes, y + j * y_row, y_row, out + j * ldy + r, ldy);
    }
    /* the tiles took the pairs of blocks; the mins (and a block left over) come after them */
    if (has_min_of(kind)) return add_min_terms(kind, nb, x, row_bytes, m, y, y_row, n, out, ldy, block_bytes_of(kind));
    return 0;
}

#define GEMM_FORM(name, kind)                                                                                   \
    int gemm_##name##_avx512(int64_t k, const void *restrict x, int64_t row_bytes, int64_t m,                     \
                             const void *restrict y, int64_t y_row, int64_t n, float *restrict out, int64_t ldy) { \
        return gemm(kind, k, x, row_bytes, m, y, y_row, n, out, ldy);                                            \
    }

GEMM_FORM(q4_0_q8_0, KIND_Q4_0)
GEMM_FORM(q4_1_q8_0s, KIND_Q4_1)
GEMM_FORM(q5_0_q8_0, KIND_Q5_0)
GEMM_FORM(q5_1_q8_0s, KIND_Q5_1)
GEMM_FORM(iq4_nl_q8_0, KIND_IQ4_NL)
GEMM_FORM(q8_0_q8_0, KIND_Q8_0)
