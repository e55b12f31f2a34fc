/* Matrix-matrix microkernels for prompt batches, AVX-512 VNNI, for Q4_K and Q6_K weights by Q8_K
 * activations (gemm_avx512.c has the 32-element block types and says why a batch wants its own
 * kernel).
 *
 * Per super-block of 256 the weights are unpacked once per weight row into 4 chunks of 64 unsigned
 * bytes in element order (kept in L1), and dotted with every activation row of the tile. The
 * sub-block scales are integers, so a super-block's sum stays integer: dpbusd gives int32 sums of
 * four products, two chunks' sums are narrowed to int16 together (they fit: 4 * 63 * 128 < 2^15)
 * and dpwssd multiplies them by their sub-block scales and adds them up in one step. Only then,
 * once per super-block, does the float scale (d of the weights times d of the activations) apply.
 * The offsets (Q4_K's mins, Q6_K's -32) are sub-block sums of the activations, which Q8_K keeps
 * (bsums), times the scales: one more dpwssd. */
#include "simd_avx512.h"

/* One weight row at a time, by 8 activation rows: the unpacked super-block (7 registers' worth)
 * is reused 8 times. Measured at batch 512, 2048 x 2048: 1 x 8 and 1 x 12 beat 2 x 6, 2 x 8, 3 x 6,
 * 4 x 3 and 4 x 4 by 10-40%. */
enum { TILE_R = 1, TILE_J = 8 };
enum { CHUNKS = QK_K / 64 };

typedef enum { KIND_Q4_K, KIND_Q6_K } k_kind;

/* One weight row's super-block made ready: levels as bytes, the scales as the int16 words dpwssd
 * takes for each pair of chunks, and the offset term's words for the activations' bsums. */
typedef struct {
    __m512i q[CHUNKS];
    __m512i scales[2]; /* per pair of chunks, word w: the scale of the sub-block its sum came from */
    __m512i offsets;   /* words 0..15 multiply bsums[0..15] (16..31 zero) */
    float d, dmin;     /* dmin: Q4_K only */
} unpacked;

/* Which sub-block the dpwssd word w of chunk pair p sums: vpackssdw(A, B) puts, in 128-bit lane k,
 * int32 lanes 4k..4k+3 of A (chunk 2p), then those of B (chunk 2p + 1); lane l of a chunk c holds
 * elements 64c + 4l .. 64c + 4l + 3. So word w is sub-block (64c + 4l) / size with k = w / 8,
 * c = 2p + (w % 8) / 4, l = 4k + w % 4: Q4_K's sub-blocks have 32 elements, Q6_K's 16. */
static const int16_t scale_index[2][2][32] = {
    [KIND_Q4_K] = {{0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3},
                   {4, 4, 4, 4, 6, 6, 6, 6, 4, 4, 4, 4, 6, 6, 6, 6, 5, 5, 5, 5, 7, 7, 7, 7, 5, 5, 5, 5, 7, 7, 7, 7}},
    [KIND_Q6_K] = {{0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7},
                   {8, 8, 8, 8, 12, 12, 12, 12, 9, 9, 9, 9, 13, 13, 13, 13,
                    10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15}},
};

/* the two pairs' scale words from the scales as words 0..n */
static inline void spread_scales(const k_kind kind, __m512i words, __m512i out[2]) {
    out[0] = _mm512_permutexvar_epi16(_mm512_loadu_si512(scale_index[kind][0]), words);
    out[1] = _mm512_permutexvar_epi16(_mm512_loadu_si512(scale_index[kind][1]), words);
}

static inline __attribute__((always_inline)) void unpack_q4_K(const block_q4_K *b, unpacked *u) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < CHUNKS; c++) { /* 32 bytes: low nibbles are elements 64c.., high ones 64c + 32.. */
        const __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
        u->q[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, low4)),
                                     _mm256_and_si256(_mm256_srli_epi16(v, 4), low4), 1);
    }
    uint32_t sm[4]; /* bytes 0..7 scales, 8..15 mins */
    gk_unpack_scales_mins_k4(b->scales, sm);
    const __m512i words = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)sm)));
    spread_scales(KIND_Q4_K, words, u->scales);
    /* the min of sub-block s (32 elements) applies to bsums 2s and 2s + 1: words 8 + s, twice */
    const __m512i mins_twice = _mm512_setr_epi32(8 | 8 << 16, 9 | 9 << 16, 10 | 10 << 16, 11 | 11 << 16,
                                                 12 | 12 << 16, 13 | 13 << 16, 14 | 14 << 16, 15 | 15 << 16,
                                                 0, 0, 0, 0, 0, 0, 0, 0);
    u->offsets = _mm512_maskz_permutexvar_epi16(0xFFFF, mins_twice, words);
    u->d = gk_fp16_to_fp32(b->d);
    u->dmin = gk_fp16_to_fp32(b->dmin);
}

static inline __attribute__((always_inline)) void unpack_q6_K(const block_q6_K *b, unpacked *u) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
    for (int half = 0; half < 2; half++) { /* 128 elements: ql[64 half..], qh[32 half..] */
        const __m512i ql = _mm512_loadu_si512(b->ql + 64 * half);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * half));
        /* the two high bits of element l (< 32) are qh bits 0-1, of l + 32 bits 2-3, l + 64 bits 4-5,
         * l + 96 bits 6-7: moved to bits 4-5 of each byte */
        const __m512i h01 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_slli_epi16(qh, 4)), _mm256_slli_epi16(qh, 2), 1);
        const __m512i h23 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        u->q[2 * half] = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_and_si512(h01, bits45));
        u->q[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), _mm512_and_si512(h23, bits45));
    }
    const __m512i words = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales)));
    spread_scales(KIND_Q6_K, words, u->scales);
    /* levels are stored + 32: take back 32 * scale * bsum per sub-block of 16 */
    u->offsets = _mm512_maskz_mullo_epi16(0xFFFF, words, _mm512_set1_epi16(-32));
    u->d = gk_fp16_to_fp32(b->d);
    u->dmin = 0;
}

/* sum over a super-block of scale * (levels . activations), and the offset term, as int32 lanes */
static inline __attribute__((always_inline)) __m512i superblock_dot(const unpacked *u, const __m512i a[CHUNKS]) {
    __m512i acc = _mm512_setzero_si512();
    for (int p = 0; p < 2; p++) {
        const __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u->q[2 * p], a[2 * p]);
        const __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u->q[2 * p + 1], a[2 * p + 1]);
        acc = _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(s0, s1), u->scales[p]);
    }
    return acc;
}

/* R weight rows by J activation rows over nb super-blocks, written to out[j * ldy + r]. */
static inline __attribute__((always_inline)) void gemm_k_tile(const int R, const int J, const k_kind kind,
                                                               const int stream, int64_t nb, const char *restrict x,
                                                               int64_t row_bytes, const char *restrict y, int64_t y_row,
                                                               float *out, int64_t ldy) {
    const int64_t bb = kind == KIND_Q4_K ? (int64_t)sizeof(block_q4_K) : (int64_t)sizeof(block_q6_K);
    __m512 acc[TILE_R][TILE_J];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < J; j++) acc[r][j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        unpacked u[TILE_R];
        for (int r = 0; r < R; r++) {
            const char *xb = x + r * row_bytes + i * bb;
            if (stream) /* the weights come from DRAM once (GK_FOR_EACH_TILE): ask 2 KiB ahead */
                for (int line = 0; line < bb; line += 64) _mm_prefetch(xb + 2048 + line, _MM_HINT_T0);
            if (kind == KIND_Q4_K) unpack_q4_K((const block_q4_K *)xb, &u[r]);
            else unpack_q6_K((const block_q6_K *)xb, &u[r]);
        }
        for (int j = 0; j < J; j++) {
            const block_q8_K *yb = (const block_q8_K *)(y + j * y_row) + i;
            __m512i a[CHUNKS];
            for (int c = 0; c < CHUNKS; c++) a[c] = _mm512_loadu_si512(yb->qs + 64 * c);
            const __m512i bsums = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)yb->bsums));
            for (int r = 0; r < R; r++) {
                __m512i dot = superblock_dot(&u[r], a);
                const __m512i off = _mm512_dpwssd_epi32(_mm512_setzero_si512(), bsums, u[r].offsets);
                if (kind == KIND_Q6_K) { /* the offset has the scales' float factor */
                    dot = _mm512_add_epi32(dot, off);
                    acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(u[r].d * yb->d), acc[r][j]);
                } else { /* Q4_K's mins have their own, dmin */
                    acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(u[r].d * yb->d), acc[r][j]);
                    acc[r][j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(off), _mm512_set1_ps(u[r].dmin * yb->d), acc[r][j]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < J; j++) out[j * ldy + r] = _mm512_reduce_add_ps(acc[r][j]);
}

static inline __attribute__((always_inline)) int gemm_k(const k_kind kind, int64_t k, const char *x,
                                                         int64_t row_bytes, int64_t m, const char *y, int64_t y_row,
                                                         int64_t n, float *out, int64_t ldy) {
    const int64_t nb = k / QK_K;
    GK_FOR_EACH_TILE_OF(n, TILE_R, TILE_J, TILE_R, gemm_k_tile, kind, nb, x, row_bytes, m, y, y_row, out, ldy);
    return 0;
}

GK_GEMM_ENTRY(q4_K_q8_K, gemm_k, KIND_Q4_K)
GK_GEMM_ENTRY(q6_K_q8_K, gemm_k, KIND_Q6_K)
