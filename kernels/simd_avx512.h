/* AVX-512 VNNI pieces shared by the dot products (vec_dot_avx512.c) and the matrix-matrix
 * microkernels (gemm_avx512.c): 32-element quant blocks made into bytes, two blocks per register,
 * and their scales gathered and spread over the int32 lanes. Compiled only with the avx512 flags. */
#ifndef GK_SIMD_AVX512_H
#define GK_SIMD_AVX512_H

#include <immintrin.h>

#include "quants.h"

/* Two 32-element blocks per 512-bit register; VNNI's dpbusd multiplies u8 by s8 and sums groups of
 * four into int32 in one instruction. The prefetch is the AVX2 file's, for the same reason. */

/* The nibbles of two blocks A, B as bytes in "nibble order": [A 0..15, B 0..15, A 16..31, B 16..31]
 * (low nibbles are elements 0..15, high ones 16..31). The activations are put in the same order
 * once, so that rows sharing them need no shuffle of their own. */
static inline __m512i nibbles_to_bytes_x2(const uint8_t *a, const uint8_t *b) {
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                              _mm_loadu_si128((const __m128i *)b), 1);
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    return _mm512_and_si512(w, _mm512_set1_epi8(0x0F));
}

/* the activations of two blocks in nibble order */
static inline __m512i load_x2(const int8_t *a, const int8_t *b) {
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                                         _mm256_loadu_si256((const __m256i *)b), 1);
    return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
}

/* The fp16 fields of four consecutive blocks gathered with one load and one word permute: the
 * blocks are contiguous and their fields sit at even byte offsets. Converting the scales one at a
 * time through general registers costs more than the integer dot itself. */
static inline __m128i halves_of_4_blocks(const void *blocks, int block_bytes, int field_offset) {
    const int w0 = field_offset / 2, step = block_bytes / 2;
    const __m512i idx = _mm512_setr_epi32(w0 | (w0 + step) << 16, (w0 + 2 * step) | (w0 + 3 * step) << 16,
                                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    if (3 * block_bytes + field_offset + 2 <= 64) /* all four fields within the first 64 bytes */
        return _mm512_castsi512_si128(_mm512_permutexvar_epi16(idx, _mm512_loadu_si512(blocks)));
    const __m512i lo = _mm512_loadu_si512(blocks), hi = _mm512_loadu_si512((const char *)blocks + 64);
    return _mm512_castsi512_si128(_mm512_permutex2var_epi16(lo, idx, hi));
}

/* block scales s0..s3 spread over the int32 lanes of two nibble-order pairs: lanes 0-3 and 8-11
 * hold block A's sums, 4-7 and 12-15 block B's */
static inline void spread_x4(__m128 p, __m512 *s01, __m512 *s23) {
    const __m512 v = _mm512_castps128_ps512(p);
    *s01 = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1), v);
    *s23 = _mm512_permutexvar_ps(_mm512_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2, 3, 3, 3, 3), v);
}


/* The 32-element block kinds: where the fields sit, and how a level is made. Q8_0 is only used by
 * the matrix-matrix microkernels (its dot products are the AVX2 ones). */
typedef enum { KIND_Q4_0, KIND_Q4_1, KIND_Q5_0, KIND_Q5_1, KIND_IQ4_NL, KIND_Q8_0 } block_kind;

/* the fifth bits of blocks A, B (32 each) as a mask over nibble order [A 0..15, B 0..15, A 16..31, B 16..31] */
static inline __mmask64 fifth_bits_x2(const uint8_t *qha, const uint8_t *qhb) {
    uint32_t a, b;
    memcpy(&a, qha, 4);
    memcpy(&b, qhb, 4);
    return (uint64_t)(a & 0xFFFF) | (uint64_t)(b & 0xFFFF) << 16 | (uint64_t)(a >> 16) << 32 | (uint64_t)(b >> 16) << 48;
}

/* the fp16 fields of two consecutive blocks in lanes 0, 1 (2, 3 zero): for a leftover pair */
static inline __m128i halves_of_2_blocks(const void *blocks, int block_bytes, int field_offset) {
    uint16_t a, b;
    memcpy(&a, (const char *)blocks + field_offset, 2);
    memcpy(&b, (const char *)blocks + block_bytes + field_offset, 2);
    return _mm_setr_epi16((short)a, (short)b, 0, 0, 0, 0, 0, 0);
}

static inline int block_bytes_of(const block_kind kind) {
    return kind == KIND_Q4_1 ? (int)sizeof(block_q4_1) : kind == KIND_Q5_0 ? (int)sizeof(block_q5_0)
         : kind == KIND_Q5_1 ? (int)sizeof(block_q5_1) : kind == KIND_Q8_0 ? (int)sizeof(block_q8_0)
         : (int)sizeof(block_q4_0); /* Q4_0, IQ4_NL: 18 */
}

/* Kinds with a min (Q4_1, Q5_1) take Q8_0S activations, whose block sums come along. */
static inline int has_min_of(const block_kind kind) { return kind == KIND_Q4_1 || kind == KIND_Q5_1; }

/* Levels are made unsigned for dpbusd (u8 x s8) by this offset, taken back as offset * sum(a). */
static inline int level_offset(const block_kind kind) {
    return kind == KIND_Q4_0 ? 8 : kind == KIND_Q5_0 ? 16 : kind == KIND_IQ4_NL || kind == KIND_Q8_0 ? 128 : 0;
}

/* offset * (sums of groups of four activations) per int32 lane, for two activation blocks a;
 * computed once per activation pair and shared by every weight row. dpbusd with the offset as the
 * unsigned operand multiplies and sums in one instruction (offset <= 128 fits a u8). */
static inline __attribute__((always_inline)) __m512i offset_sums(const block_kind kind, __m512i a) {
    const int offset = level_offset(kind);
    return offset ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)offset), a)
                  : _mm512_setzero_si512();
}

/* Two activation blocks (at ya and ya + y_bytes) as the weight bytes of their kind are ordered:
 * nibble order for the 4- and 5-bit kinds, natural order for Q8_0. */
static inline __attribute__((always_inline)) __m512i act_x2(const block_kind kind, const int8_t *ya, int y_bytes) {
    if (kind != KIND_Q8_0) return load_x2(ya, ya + y_bytes);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)ya)),
                              _mm256_loadu_si256((const __m256i *)(ya + y_bytes)), 1);
}

/* The levels of two blocks of one weight row (at xb), made unsigned bytes (level + offset) for dpbusd. */
static inline __attribute__((always_inline)) __m512i weight_bytes_x2(const block_kind kind, const char *xb) {
    const int has_fifth = kind == KIND_Q5_0 || kind == KIND_Q5_1;
    const int block_bytes = block_bytes_of(kind);
    const int qh_offset = has_min_of(kind) ? 4 : 2, qs_offset = qh_offset + (has_fifth ? 4 : 0);
    if (kind == KIND_Q8_0) /* s8 + 128 = s8 ^ 0x80 */
        return _mm512_xor_si512(act_x2(kind, (const int8_t *)xb + 2, block_bytes), _mm512_set1_epi8((char)0x80));
    __m512i q = nibbles_to_bytes_x2((const uint8_t *)xb + qs_offset, (const uint8_t *)xb + block_bytes + qs_offset);
    if (has_fifth) /* nibble + 16 = nibble | 16 */
        q = _mm512_mask_add_epi8(q, fifth_bits_x2((const uint8_t *)xb + qh_offset,
                                                 (const uint8_t *)xb + block_bytes + qh_offset), q, _mm512_set1_epi8(0x10));
    if (kind == KIND_IQ4_NL)
        q = _mm512_shuffle_epi8(_mm512_add_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)gk_kvalues_iq4nl)),
                                                _mm512_set1_epi8((char)128)), q);
    return q;
}

/* The integer dot of two blocks of one weight row (at xb) with two activation blocks a, per int32
 * lane (in nibble order for the 4-bit kinds), as floats, the offset taken back. */
static inline __attribute__((always_inline)) __m512 pair_dot(const block_kind kind, const char *xb, __m512i a,
                                                              __m512i sa_off) {
    __m512i qa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), weight_bytes_x2(kind, xb), a);
    if (level_offset(kind)) qa = _mm512_sub_epi32(qa, sa_off);
    return _mm512_cvtepi32_ps(qa);
}

/* The single-row AVX2 dot of a kind, for a block left over after the pairs. */
static inline float block_dot_avx2(const block_kind kind, int64_t n, const char *x, const char *y) {
    float s = 0;
    switch (kind) {
    case KIND_Q4_0: vec_dot_q4_0_q8_0_avx2(n, &s, x, y); break;
    case KIND_Q4_1: vec_dot_q4_1_q8_0s_avx2(n, &s, x, y); break;
    case KIND_Q5_0: vec_dot_q5_0_q8_0_avx2(n, &s, x, y); break;
    case KIND_Q5_1: vec_dot_q5_1_q8_0s_avx2(n, &s, x, y); break;
    case KIND_IQ4_NL: vec_dot_iq4_nl_q8_0_avx2(n, &s, x, y); break;
    case KIND_Q8_0: vec_dot_q8_0_q8_0_avx2(n, &s, x, y); break;
    }
    return s;
}

/* Walks an m x n product (weight rows by activation rows) in register tiles: TILE_R x TILE_J, then
 * activation rows left over one at a time in VEC_R-row tiles, weight rows left over one at a time.
 * Each tile is tile_fn(R, J, kind, stream, blocks, x + r * row_bytes, row_bytes, y + j * y_row, y_row,
 * out + j * ldy + r, ldy), the shape every microkernel in gemm_avx512.c and gemm_k_avx512.c takes.
 * stream (a constant): the weights come from DRAM once (decoding batches: gk_gemm_stream_max_batch), so tiles
 * prefetch ahead as the matrix-vector form does; prompt batches find a tile's rows in cache. */
#define GK_FOR_EACH_TILE(TILE_R, TILE_J, VEC_R, tile_fn, kind, stream, blocks, x, row_bytes, m, y, y_row, n, out, \
                         ldy)                                                                                 \
    do {                                                                                                     \
        int64_t j_ = 0;                                                                                      \
        for (; j_ + (TILE_J) <= (n); j_ += (TILE_J)) {                                                       \
            int64_t r_ = 0;                                                                                  \
            for (; r_ + (TILE_R) <= (m); r_ += (TILE_R))                                                     \
                tile_fn(TILE_R, TILE_J, kind, stream, blocks, (x) + r_ * (row_bytes), row_bytes,              \
                        (y) + j_ * (y_row), y_row, (out) + j_ * (ldy) + r_, ldy);                            \
            for (; r_ < (m); r_++)                                                                           \
                tile_fn(1, TILE_J, kind, stream, blocks, (x) + r_ * (row_bytes), row_bytes, (y) + j_ * (y_row), \
                        y_row, (out) + j_ * (ldy) + r_, ldy);                                                \
        }                                                                                                    \
        for (; j_ < (n); j_++) {                                                                             \
            int64_t r_ = 0;                                                                                  \
            for (; r_ + (VEC_R) <= (m); r_ += (VEC_R))                                                       \
                tile_fn(VEC_R, 1, kind, 1, blocks, (x) + r_ * (row_bytes), row_bytes, (y) + j_ * (y_row), y_row, \
                        (out) + j_ * (ldy) + r_, ldy);                                                       \
            for (; r_ < (m); r_++)                                                                           \
                tile_fn(1, 1, kind, 1, blocks, (x) + r_ * (row_bytes), row_bytes, (y) + j_ * (y_row), y_row,   \
                        (out) + j_ * (ldy) + r_, ldy);                                                       \
        }                                                                                                    \
    } while (0)

/* The walk with stream a constant either way (the tiles are inlined for each): on up to
 * gk_gemm_stream_max_batch activation rows (matmul.c), decoding's batches. */
#define GK_FOR_EACH_TILE_OF(n, TILE_R, TILE_J, VEC_R, tile_fn, kind, blocks, x, row_bytes, m, y, y_row, out, ldy) \
    do {                                                                                                           \
        if ((n) <= gk_gemm_stream_max_batch)                                                                       \
            GK_FOR_EACH_TILE(TILE_R, TILE_J, VEC_R, tile_fn, kind, 1, blocks, x, row_bytes, m, y, y_row, n, out, ldy); \
        else                                                                                                       \
            GK_FOR_EACH_TILE(TILE_R, TILE_J, VEC_R, tile_fn, kind, 0, blocks, x, row_bytes, m, y, y_row, n, out, ldy); \
    } while (0)

/* The exported matrix-matrix form of one kind: gemm_<name>_avx512 (the gk_gemm_fn of quants.h) over a
 * file's own always-inline walk, impl(kind, k, x, row_bytes, m, y, y_row, n, out, ldy). */
#define GK_GEMM_ENTRY(name, impl, kind)                                                                     \
    int gemm_##name##_avx512(int64_t k, const void *restrict x, int64_t row_bytes, int64_t m,                \
                             const void *restrict y, int64_t y_row, int64_t n, float *restrict out,          \
                             int64_t ldy) {                                                                  \
        return impl(kind, k, x, row_bytes, m, y, y_row, n, out, ldy);                                       \
    }

#endif
