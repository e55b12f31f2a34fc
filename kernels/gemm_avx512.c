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
 * 2 x 6, 4 x 2 and 1 x 8. */
enum { TILE_R = 4, TILE_J = 3 };
/* Single activation rows take VEC_R weight rows per pass: from DRAM, 2 row streams beat 4 (as for the
 * dot products' rows form). Every tile shape computes a row the same way, in the same order, so a
 * result does not depend on the batch it came in. */
enum { VEC_R = 2 };
/* Decoding batches (up to gk_gemm_stream_max_batch rows, weights streamed from DRAM) take 2 x 8 tiles,
 * then one 2 x 4, then one 2 x 3 or 2 x 2, then a single row: at 8 rows each pair of weight blocks is
 * unpacked once. On SmolLM2
 * Q4_1 decode steps (interleaved, 5 rounds) 2 x 8 made 1.15x 4 x 3's tokens/s at 8 rows and 2 x 4
 * 1.06x at 4; at 16 rows all were within 3%. */
enum { STREAM_R = 2, STREAM_J = 8, STREAM_J_REST = 4, MAX_R = 4, MAX_J = 8 };

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

static inline float hsum4(__m128 v) {
    const __m128 h2 = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
}

/* The products of R weight rows (row_bytes apart, from x) by J activation rows (y_row apart, from
 * y) over nb blocks, written to out[j * ldy + r]. R and J are constants after inlining. */
static inline __attribute__((always_inline)) void gemm_tile(const int R, const int J, const block_kind kind,
                                                             const int stream, int64_t nb, const char *restrict x,
                                                             int64_t row_bytes, const char *restrict y, int64_t y_row,
                                                             float *out, int64_t ldy) {
    const int has_min = has_min_of(kind), bb = block_bytes_of(kind);
    const int y_bytes = has_min ? (int)sizeof(block_q8_0s) : (int)sizeof(block_q8_0), y_qs = has_min ? 4 : 2;
    /* A single activation row (J == 1) adds the min terms here, in registers; wider tiles leave them
     * to add_min_terms_avx512, which sums them in the same order. */
    const int mins_here = has_min && J == 1;
    __m512 acc[MAX_R][MAX_J];
    __m128 acc_m[MAX_R];
    for (int r = 0; r < R; r++) {
        acc_m[r] = _mm_setzero_ps();
        for (int j = 0; j < J; j++) acc[r][j] = _mm512_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m128 dw[MAX_R], dy[MAX_J];
        if (stream) /* the weights come from DRAM once (GK_FOR_EACH_TILE): the rows after these
                     * (adjacent in memory) are the next to be read, so ask for them, at the same blocks */
            for (int r = 0; r < R; r++)
                for (int line = 0; line < 4 * bb; line += 64)
                    _mm_prefetch(x + (r + R) * row_bytes + i * bb + line, _MM_HINT_T0);
        for (int r = 0; r < R; r++) dw[r] = _mm_cvtph_ps(halves_of_4_blocks(x + r * row_bytes + i * bb, bb, 0));
        for (int j = 0; j < J; j++) dy[j] = _mm_cvtph_ps(halves_of_4_blocks(y + j * y_row + i * y_bytes, y_bytes, 0));
        if (mins_here) {
            const __m128i s4 = halves_of_4_blocks(y + i * y_bytes, y_bytes, 2);
            const __m128 dys = _mm_mul_ps(dy[0], _mm_cvtepi32_ps(_mm_cvtepi16_epi32(s4)));
            for (int r = 0; r < R; r++)
                acc_m[r] = _mm_fmadd_ps(_mm_cvtph_ps(halves_of_4_blocks(x + r * row_bytes + i * bb, bb, 2)), dys, acc_m[r]);
        }
        for (int h = 0; h < 2; h++) {
            const int64_t b = i + 2 * h;
            __m512i q[TILE_R];
            __m512 dws[TILE_R];
            for (int r = 0; r < R; r++) {
                q[r] = weight_bytes_x2(kind, x + r * row_bytes + b * bb);
                /* one activation row: multiply the scales before spreading them (the same products) */
                dws[r] = spread(kind, J == 1 ? _mm_mul_ps(dw[r], dy[0]) : dw[r], h);
            }
            for (int j = 0; j < J; j++) {
                const __m512i a = act_x2(kind, (const int8_t *)(y + j * y_row + b * y_bytes + y_qs), y_bytes);
                const __m512i neg_off = _mm512_sub_epi32(_mm512_setzero_si512(), offset_sums(kind, a));
                const __m512 dys = spread(kind, dy[j], h);
                for (int r = 0; r < R; r++) {
                    const __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(neg_off, q[r], a));
                    acc[r][j] = _mm512_fmadd_ps(dot, J == 1 ? dws[r] : _mm512_mul_ps(dws[r], dys), acc[r][j]);
                }
            }
        }
    }
    for (; i + 2 <= nb; i += 2) { /* a pair left over: scales gathered one by one */
        __m512 dws[TILE_R];
        __m512i q[TILE_R];
        if (mins_here) {
            const __m128 d2 = _mm_cvtph_ps(halves_of_2_blocks(y + i * y_bytes, y_bytes, 0));
            const __m128 dys = _mm_mul_ps(d2, _mm_cvtepi32_ps(_mm_cvtepi16_epi32(halves_of_2_blocks(y + i * y_bytes, y_bytes, 2))));
            for (int r = 0; r < R; r++)
                acc_m[r] = _mm_fmadd_ps(_mm_cvtph_ps(halves_of_2_blocks(x + r * row_bytes + i * bb, bb, 2)), dys, acc_m[r]);
        }
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
            if (i < nb) /* one block left: the AVX2 single-row form */
                s += block_dot_avx2(kind, QK8_0, x + r * row_bytes + i * bb, y + j * y_row + i * y_bytes);
            if (mins_here) s += hsum4(acc_m[r]);
            out[j * ldy + r] = s;
        }
}

/* Q4_1, Q5_1: out[j * ldy + r] += sum over blocks b < nb (even) of m(r, b) * d(j, b) * s(j, b), the
 * weight mins times the activations' scaled block sums (Q8_0S), sixteen weight rows a vector. The
 * single-row tiles add the same terms in registers (acc_m): lane k of four accumulators takes blocks
 * k, k + 4, ..., a pair left over lanes 0 and 1, and the lanes are summed as (0 + 2) + (1 + 3). Here
 * accumulator k holds lane k of sixteen rows, so every row's sum is formed in the same order and the
 * results are the same bits whatever the batch. Returns -1 when out of memory. */
static int add_min_terms_avx512(int64_t nb, const char *x, int64_t row_bytes, int64_t m, const char *y, int64_t y_row,
                                int64_t n, float *out, int64_t ldy, int bb) {
    /* small batches (decoding) on the stack: this runs once per weight tile, and malloc showed in profiles */
    float local[4096];
    const int64_t need = nb * (n + 16);
    float *sums = need <= 4096 ? local : malloc(sizeof(float) * (size_t)need), *mins = sums + nb * n;
    if (!sums) return -1;
    const int64_t nb4 = nb & ~(int64_t)3;
    const int y_bytes = (int)sizeof(block_q8_0s);
    for (int64_t j = 0; j < n; j++) {
        const char *yj = y + j * y_row;
        for (int64_t b = 0; b < nb4; b += 4) {
            const __m128 d = _mm_cvtph_ps(halves_of_4_blocks(yj + b * y_bytes, y_bytes, 0));
            const __m128 s = _mm_cvtepi32_ps(_mm_cvtepi16_epi32(halves_of_4_blocks(yj + b * y_bytes, y_bytes, 2)));
            _mm_storeu_ps(sums + j * nb + b, _mm_mul_ps(d, s));
        }
        for (int64_t b = nb4; b < nb; b++) {
            const block_q8_0s *yb = (const block_q8_0s *)yj + b;
            sums[j * nb + b] = gk_fp16_to_fp32(yb->d) * (float)yb->s;
        }
    }
    /* each row's min sits in bytes 2..3 of its block: a 32-bit gather there, truncated to the half */
    const __m512i row_offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                   _mm512_set1_epi32((int)row_bytes));
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t r0 = 0; r0 < m; r0 += 16) {
        const int rows = m - r0 < 16 ? (int)(m - r0) : 16;
        const __mmask16 live = (__mmask16)((1u << rows) - 1u);
        const char *xr = x + r0 * row_bytes + 2;
        for (int64_t b = 0; b < nb; b++) {
            const __m512i w = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, row_offsets, xr + b * bb, 1);
            _mm512_storeu_ps(mins + 16 * b, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(w)));
        }
        for (int64_t j = 0; j < n; j++) {
            const float *sj = sums + j * nb;
            __m512 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
            for (int64_t b = 0; b < nb4; b += 4) {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(mins + 16 * b), _mm512_set1_ps(sj[b]), a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(mins + 16 * (b + 1)), _mm512_set1_ps(sj[b + 1]), a1);
                a2 = _mm512_fmadd_ps(_mm512_loadu_ps(mins + 16 * (b + 2)), _mm512_set1_ps(sj[b + 2]), a2);
                a3 = _mm512_fmadd_ps(_mm512_loadu_ps(mins + 16 * (b + 3)), _mm512_set1_ps(sj[b + 3]), a3);
            }
            if (nb4 < nb) { /* a pair: lanes 2 and 3 take 0 * 0, as the single-row form's */
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(mins + 16 * nb4), _mm512_set1_ps(sj[nb4]), a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(mins + 16 * (nb4 + 1)), _mm512_set1_ps(sj[nb4 + 1]), a1);
                a2 = _mm512_add_ps(a2, zero);
                a3 = _mm512_add_ps(a3, zero);
            }
            const __m512 total = _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3));
            float *o = out + j * ldy + r0;
            _mm512_mask_storeu_ps(o, live, _mm512_add_ps(_mm512_maskz_loadu_ps(live, o), total));
        }
    }
    if (sums != local) free(sums);
    return 0;
}

/* All rows of a weight tile by all activation rows, in register tiles (GK_FOR_EACH_TILE). */
static inline __attribute__((always_inline)) int gemm(const block_kind kind, int64_t k, const char *x,
                                                        int64_t row_bytes, int64_t m, const char *y, int64_t y_row,
                                                        int64_t n, float *out, int64_t ldy) {
    const int64_t nb = k / QK8_0;
    int64_t n_tiled; /* activation rows that went through tiles of more than one (from row 0 on) */
    if (n <= gk_gemm_stream_max_batch) {
        const int64_t n8 = n / STREAM_J * STREAM_J, n4 = n - n8 >= STREAM_J_REST ? STREAM_J_REST : 0;
        GK_FOR_EACH_TILE(STREAM_R, STREAM_J, VEC_R, gemm_tile, kind, 1, nb, x, row_bytes, m, y, y_row, n8, out, ldy);
        GK_FOR_EACH_TILE(STREAM_R, STREAM_J_REST, VEC_R, gemm_tile, kind, 1, nb, x, row_bytes, m, y + n8 * y_row,
                         y_row, n4, out + n8 * ldy, ldy);
        n_tiled = n8 + n4; /* fewer than STREAM_J_REST rows left: 3 or 2 in a tile, 1 alone */
        const char *y_rest = y + n_tiled * y_row;
        float *out_rest = out + n_tiled * ldy;
        if (n - n_tiled == 3)
            GK_FOR_EACH_TILE(STREAM_R, 3, VEC_R, gemm_tile, kind, 1, nb, x, row_bytes, m, y_rest, y_row, 3, out_rest, ldy);
        else if (n - n_tiled == 2)
            GK_FOR_EACH_TILE(STREAM_R, 2, VEC_R, gemm_tile, kind, 1, nb, x, row_bytes, m, y_rest, y_row, 2, out_rest, ldy);
        else /* 0 or 1 row: the single-row form */
            GK_FOR_EACH_TILE(STREAM_R, 2, VEC_R, gemm_tile, kind, 1, nb, x, row_bytes, m, y_rest, y_row, n - n_tiled,
                             out_rest, ldy);
        n_tiled = n - n_tiled >= 2 ? n : n_tiled;
    } else {
        GK_FOR_EACH_TILE(TILE_R, TILE_J, VEC_R, gemm_tile, kind, 0, nb, x, row_bytes, m, y, y_row, n, out, ldy);
        n_tiled = n / TILE_J * TILE_J;
    }
    /* the tiles took the pairs of blocks; a block left over went through a dot that has its min */
    if (has_min_of(kind) && n_tiled > 0)
        return add_min_terms_avx512(nb & ~(int64_t)1, x, row_bytes, m, y, y_row, n_tiled, out, ldy, block_bytes_of(kind));
    return 0;
}

GK_GEMM_ENTRY(q4_0_q8_0, gemm, KIND_Q4_0)
GK_GEMM_ENTRY(q4_1_q8_0s, gemm, KIND_Q4_1)
GK_GEMM_ENTRY(q5_0_q8_0, gemm, KIND_Q5_0)
GK_GEMM_ENTRY(q5_1_q8_0s, gemm, KIND_Q5_1)
GK_GEMM_ENTRY(iq4_nl_q8_0, gemm, KIND_IQ4_NL)
GK_GEMM_ENTRY(q8_0_q8_0, gemm, KIND_Q8_0)

/* Float weights (F32, F16, BF16) by F32 activations: the same register tiling, sharing each
 * weight vector's widening across the activation rows and each activation load across the weight
 * rows; what is left per pair of rows is one fused multiply-add per 16 elements. */
typedef enum { FLOAT_F32, FLOAT_F16, FLOAT_BF16 } float_kind;

static inline __attribute__((always_inline)) __m512 load_weights16(const float_kind kind, const char *x, int64_t e) {
    if (kind == FLOAT_F32) return _mm512_loadu_ps((const float *)x + e);
    const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)x + e));
    if (kind == FLOAT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); /* bf16: the high half */
}

static inline __attribute__((always_inline)) void gemm_float_tile(const int R, const int J, const float_kind kind,
                                                                   const int stream, int64_t k, const char *restrict x, int64_t row_bytes,
                                                                   const float *restrict y, int64_t y_row, float *out,
                                                                   int64_t ldy) {
    __m512 acc[TILE_R][TILE_J];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < J; j++) acc[r][j] = _mm512_setzero_ps();
    int64_t e = 0;
    for (; e + 16 <= k; e += 16) {
        __m512 w[TILE_R];
        if (stream && e % 32 == 0) /* streaming from DRAM: ask 2 KiB ahead, a line per row per 64 bytes */
            for (int r = 0; r < R; r++)
                _mm_prefetch(x + r * row_bytes + (e * (kind == FLOAT_F32 ? 4 : 2)) + 2048, _MM_HINT_T0);
        for (int r = 0; r < R; r++) w[r] = load_weights16(kind, x + r * row_bytes, e);
        for (int j = 0; j < J; j++) {
            const __m512 a = _mm512_loadu_ps(y + j * y_row + e);
            for (int r = 0; r < R; r++) acc[r][j] = _mm512_fmadd_ps(w[r], a, acc[r][j]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < J; j++) {
            float s = _mm512_reduce_add_ps(acc[r][j]);
            for (int64_t t = e; t < k; t++) { /* elements left over: k need not be a multiple of 16 */
                const char *xr = x + r * row_bytes;
                const float wt = kind == FLOAT_F32 ? ((const float *)xr)[t]
                               : kind == FLOAT_F16 ? gk_fp16_to_fp32(((const uint16_t *)xr)[t])
                                                   : gk_bf16_to_fp32(((const uint16_t *)xr)[t]);
                s += wt * y[j * y_row + t];
            }
            out[j * ldy + r] = s;
        }
}

static inline __attribute__((always_inline)) int gemm_float(const float_kind kind, int64_t k, const char *x,
                                                             int64_t row_bytes, int64_t m, const float *y,
                                                             int64_t y_row, int64_t n, float *out, int64_t ldy) {
    y_row /= (int64_t)sizeof(float); /* rows of floats: y_row comes in bytes */
    GK_FOR_EACH_TILE_OF(n, TILE_R, TILE_J, TILE_R, gemm_float_tile, kind, k, x, row_bytes, m, y, y_row, out, ldy);
    return 0;
}

GK_GEMM_ENTRY(f32_f32, gemm_float, FLOAT_F32)
GK_GEMM_ENTRY(f16_f32, gemm_float, FLOAT_F16)
GK_GEMM_ENTRY(bf16_f32, gemm_float, FLOAT_BF16)
