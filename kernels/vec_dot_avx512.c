/* AVX-512 dot products (the quantized types use the AVX2 ones at this level too, for now). */
#include <immintrin.h>

#include "quants.h"

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

/* R consecutive weight rows (row_bytes apart) against one activation row: the activation loads,
 * their block sums and scales are shared, which is most of the per-block work besides the weights.
 * Consecutive rows are adjacent, so "ahead" for the prefetch is the same place R rows on. */
#define MAX_ROWS 4

/* The 32-element block kinds of the rows form: where the fields sit, and how a level is made. */
typedef enum { KIND_Q4_0, KIND_Q4_1, KIND_Q5_0, KIND_Q5_1, KIND_IQ4_NL } block_kind;

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
         : kind == KIND_Q5_1 ? (int)sizeof(block_q5_1) : (int)sizeof(block_q4_0); /* Q4_0, IQ4_NL: 18 */
}

/* Levels are made unsigned for dpbusd (u8 x s8) by this offset, taken back as offset * sum(a). */
static inline int level_offset(const block_kind kind) {
    return kind == KIND_Q4_0 ? 8 : kind == KIND_Q5_0 ? 16 : kind == KIND_IQ4_NL ? 128 : 0;
}

/* offset * (sums of groups of four activations) per int32 lane, for two activation blocks a;
 * computed once per activation pair and shared by every weight row */
static inline __attribute__((always_inline)) __m512i offset_sums(const block_kind kind, __m512i a) {
    const int offset = level_offset(kind);
    return offset ? _mm512_mullo_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), a),
                                       _mm512_set1_epi32(offset))
                  : _mm512_setzero_si512();
}

/* The integer dot of two blocks of one weight row (at xb) with two activation blocks a, per int32
 * lane in nibble order, as floats: levels made unsigned (dpbusd is u8 x s8), the offset taken back. */
static inline __attribute__((always_inline)) __m512 pair_dot(const block_kind kind, const char *xb, __m512i a,
                                                              __m512i sa_off) {
    const int has_min = kind == KIND_Q4_1 || kind == KIND_Q5_1;
    const int has_fifth = kind == KIND_Q5_0 || kind == KIND_Q5_1;
    const int block_bytes = block_bytes_of(kind);
    const int qh_offset = has_min ? 4 : 2, qs_offset = (has_min ? 4 : 2) + (has_fifth ? 4 : 0);
    __m512i q = nibbles_to_bytes_x2((const uint8_t *)xb + qs_offset, (const uint8_t *)xb + block_bytes + qs_offset);
    if (has_fifth) /* nibble + 16 = nibble | 16 */
        q = _mm512_mask_add_epi8(q, fifth_bits_x2((const uint8_t *)xb + qh_offset,
                                                 (const uint8_t *)xb + block_bytes + qh_offset), q, _mm512_set1_epi8(0x10));
    if (kind == KIND_IQ4_NL)
        q = _mm512_shuffle_epi8(_mm512_add_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)gk_kvalues_iq4nl)),
                                                _mm512_set1_epi8((char)128)), q);
    __m512i qa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, a);
    if (level_offset(kind)) qa = _mm512_sub_epi32(qa, sa_off);
    return _mm512_cvtepi32_ps(qa);
}

static inline __attribute__((always_inline)) void rows_dot(const int R, const block_kind kind, int64_t n,
                                                            float *restrict s, const char *restrict x0,
                                                            int64_t row_bytes, const char *restrict y) {
    const int has_min = kind == KIND_Q4_1 || kind == KIND_Q5_1;
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
        if (i < nb) { /* one block left: the AVX2 single-row form */
            float rest;
            const char *xr = x0 + r * row_bytes + i * block_bytes;
            const int64_t left = (nb - i) * QK8_0;
            const char *yr = y + i * y_bytes;
            switch (kind) {
            case KIND_Q4_0: vec_dot_q4_0_q8_0_avx2(left, &rest, xr, yr); break;
            case KIND_Q4_1: vec_dot_q4_1_q8_0s_avx2(left, &rest, xr, yr); break;
            case KIND_Q5_0: vec_dot_q5_0_q8_0_avx2(left, &rest, xr, yr); break;
            case KIND_Q5_1: vec_dot_q5_1_q8_0s_avx2(left, &rest, xr, yr); break;
            case KIND_IQ4_NL: vec_dot_iq4_nl_q8_0_avx2(left, &rest, xr, yr); break;
            }
            s[r] += rest;
        }
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
