/* AVX2 dot products: 32 weights per step, unpacked to bytes, multiplied with the int8 activations
 * by maddubs (u8 x s8 -> s16 pairs), widened by madd, scaled in float once per block. */
#include <immintrin.h>
#include <stddef.h>

#include "quants.h"

/* F16C converts a half in one instruction; the portable gk_fp16_to_fp32 costs ~10 per block */
#define FP16(h) _cvtsh_ss(h)

/* Weights stream from DRAM once; the hardware prefetcher alone leaves this VM latency-bound on
 * narrow (18-byte) blocks, so ask for the line PREFETCH_BYTES ahead. */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 2048
#endif
#define PREFETCH_WEIGHTS(p) _mm_prefetch((const char *)(p) + PREFETCH_BYTES, _MM_HINT_T0)

static inline float hsum_f32_8(__m256 x) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles first (elements 0..15), then high (16..31) */
static inline __m256i nibbles_to_bytes(const uint8_t *p) {
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    const __m256i b = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* s8 x s8 -> 8 int32 sums of 4, via |x| (u8) times y with x's sign */
static inline __m256i dot_s8_s8(__m256i x, __m256i y) {
    const __m256i prod = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(prod, _mm256_set1_epi16(1));
}

static inline __m256i dot_u8_s8(__m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

void vec_dot_f32_f32_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y) {
    *s = dot_f32_avx2(x, y, n);
}

void vec_dot_f16_f32_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const gk_fp16 *x = vx;
    const float *y = vy;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        PREFETCH_WEIGHTS(x + i);
        for (int k = 0; k < 4; k++) {
            const __m256 w = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8 * k)));
            acc[k] = _mm256_fmadd_ps(w, _mm256_loadu_ps(y + i + 8 * k), acc[k]);
        }
    }
    float sum = hsum_f32_8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += FP16(x[i]) * y[i];
    *s = sum;
}

void vec_dot_bf16_f32_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const gk_bf16 *x = vx;
    const float *y = vy;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 2; k++) {
            const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i + 8 * k)));
            const __m256 w = _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
            acc[k] = _mm256_fmadd_ps(w, _mm256_loadu_ps(y + i + 8 * k), acc[k]);
        }
    float sum = hsum_f32_8(_mm256_add_ps(acc[0], acc[1]));
    for (; i < n; i++) sum += gk_bf16_to_fp32(x[i]) * y[i];
    *s = sum;
}

void vec_dot_q4_0_q8_0_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        PREFETCH_WEIGHTS(x + i);
        const __m256 d = _mm256_set1_ps(FP16(x[i].d) * FP16(y[i].d));
        const __m256i q = _mm256_sub_epi8(nibbles_to_bytes(x[i].qs), _mm256_set1_epi8(8));
        const __m256i a = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc[i & 1] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8_s8(q, a)), acc[i & 1]);
    }
    *s = hsum_f32_8(_mm256_add_ps(acc[0], acc[1]));
}

void vec_dot_q4_1_q8_0s_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_1 *x = vx;
    const block_q8_0s *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float acc_m = 0;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        PREFETCH_WEIGHTS(x + i);
        const float dy = FP16(y[i].d);
        const __m256i a = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256 dot = _mm256_cvtepi32_ps(dot_u8_s8(nibbles_to_bytes(x[i].qs), a));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(FP16(x[i].d) * dy), dot, acc);
        acc_m += FP16(x[i].m) * dy * y[i].s; /* m sum(a), the sum carried by the activations */
    }
    *s = hsum_f32_8(acc) + acc_m;
}

void vec_dot_q8_0_q8_0_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; i++) {
        PREFETCH_WEIGHTS(x + i);
        const __m256 d = _mm256_set1_ps(FP16(x[i].d) * FP16(y[i].d));
        const __m256i q = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i a = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8_s8(q, a)), acc);
    }
    *s = hsum_f32_8(acc);
}

/* sum over the 8 sub-blocks of mins[j] * (bsums[2j] + bsums[2j+1]) */
static inline int mins_dot_bsums(const uint32_t scales_mins[4], const int16_t bsums[16]) {
    /* built from registers: a vector load across two just-stored words would miss store forwarding */
    const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)scales_mins[3], (int)scales_mins[2]));
    const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums), _mm_loadu_si128((const __m128i *)(bsums + 8)));
    const __m128i prod = _mm_madd_epi16(mins, pairs);
    const __m128i s = _mm_add_epi32(prod, _mm_shuffle_epi32(prod, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1))));
}


void vec_dot_q6_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        for (int line = 0; line < (int)sizeof(x[i]); line += 64) PREFETCH_WEIGHTS((const char *)(x + i) + line);
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x[i].ql + 64 * half, *qhp = x[i].qh + 32 * half;
            const int8_t *sc = x[i].scales + 8 * half, *q8 = y[i].qs + 128 * half;
            const __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
            for (int c = 0; c < 4; c++) {
                const __m256i a = _mm256_loadu_si256((const __m256i *)(q8 + 32 * c));
                const __m256i p = _mm256_maddubs_epi16(q[c], a); /* the levels unsigned, 0..63 */
                const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[2 * c + 1]), _mm_set1_epi16(sc[2 * c]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale));
            }
        }
        /* (q - 32).a = q.a - 32 * sum(a): the sums per 16 are the activations' bsums */
        const __m128i sc16 = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)x[i].scales));
        const __m128i sc16h = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(x[i].scales + 8)));
        const __m128i corr = _mm_add_epi32(_mm_madd_epi16(sc16, _mm_loadu_si128((const __m128i *)y[i].bsums)),
                                           _mm_madd_epi16(sc16h, _mm_loadu_si128((const __m128i *)(y[i].bsums + 8))));
        sumi = _mm256_sub_epi32(sumi, _mm256_castsi128_si256(_mm_slli_epi32(corr, 5)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(FP16(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32_8(acc);
}

/* 32 bits -> 32 bytes, 0xFF where the bit (element e <-> bit e) is set */
static inline __m256i bits_to_bytes(const uint8_t *p) {
    uint32_t bits;
    memcpy(&bits, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
    const __m256i others = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(others, _mm256_set1_epi64x(-1));
}

void vec_dot_q5_0_q8_0_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; i++) {
        PREFETCH_WEIGHTS(x + i);
        const __m256 d = _mm256_set1_ps(FP16(x[i].d) * FP16(y[i].d));
        /* nibble | 0xF0 where the 5th bit is clear: as int8 that is (nibble | bit << 4) - 16 */
        const __m256i high = _mm256_andnot_si256(bits_to_bytes(x[i].qh), _mm256_set1_epi8((char)0xF0));
        const __m256i q = _mm256_or_si256(nibbles_to_bytes(x[i].qs), high);
        const __m256i a = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8_s8(q, a)), acc);
    }
    *s = hsum_f32_8(acc);
}

void vec_dot_q5_1_q8_0s_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q5_1 *x = vx;
    const block_q8_0s *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float acc_m = 0;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        PREFETCH_WEIGHTS(x + i);
        const float dy = FP16(y[i].d);
        const __m256i high = _mm256_and_si256(bits_to_bytes(x[i].qh), _mm256_set1_epi8(0x10));
        const __m256i q = _mm256_or_si256(nibbles_to_bytes(x[i].qs), high);
        const __m256i a = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(FP16(x[i].d) * dy), _mm256_cvtepi32_ps(dot_u8_s8(q, a)), acc);
        acc_m += FP16(x[i].m) * dy * y[i].s;
    }
    *s = hsum_f32_8(acc) + acc_m;
}

void vec_dot_iq4_nl_q8_0_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_iq4_nl *x = vx;
    const block_q8_0 *y = vy;
    const __m128i table = _mm_loadu_si128((const __m128i *)gk_kvalues_iq4nl);
    const __m256i table2 = _mm256_broadcastsi128_si256(table);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; i++) {
        PREFETCH_WEIGHTS(x + i);
        const __m256 d = _mm256_set1_ps(FP16(x[i].d) * FP16(y[i].d));
        const __m256i q = _mm256_shuffle_epi8(table2, nibbles_to_bytes(x[i].qs)); /* the 16 levels */
        const __m256i a = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8_s8(q, a)), acc);
    }
    *s = hsum_f32_8(acc);
}

/* Q4_K and Q5_K: the same super-block (scales, mins, 4-bit levels) and for Q5_K a fifth bit per
 * level in qh; one body, specialized by has_qh at compile time. */
static inline __attribute__((always_inline)) void k4_dot(int64_t n, float *restrict s, const void *restrict vx,
                                                         const void *restrict vy, const int has_qh) {
    const int block_bytes = has_qh ? (int)sizeof(block_q5_K) : (int)sizeof(block_q4_K);
    const int qs_offset = has_qh ? (int)offsetof(block_q5_K, qs) : (int)offsetof(block_q4_K, qs);
    const block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float acc_min = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        /* d, dmin and scales sit alike in both blocks */
        const block_q4_K *x = (const block_q4_K *)((const char *)vx + i * block_bytes);
        for (int line = 0; line < block_bytes; line += 64) PREFETCH_WEIGHTS((const char *)x + line);
        uint32_t scales_mins[4];
        gk_unpack_scales_mins_k4(x->scales, scales_mins);
        const uint64_t sc = (uint64_t)scales_mins[1] << 32 | scales_mins[0]; /* scale j is byte j */
        acc_min -= FP16(x->dmin) * y[i].d * mins_dot_bsums(scales_mins, y[i].bsums);
        const __m256i qh = has_qh ? _mm256_loadu_si256((const __m256i *)((const block_q5_K *)x)->qh) : _mm256_setzero_si256();
        const uint8_t *q = (const uint8_t *)x + qs_offset;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++, q += 32, q8 += 64) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)q);
            __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            if (has_qh) { /* bit 2j of qh[l] tops the low nibble of element l, bit 2j+1 the high one */
                const __m256i hlo = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j)), one);
                const __m256i hhi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j + 1)), one);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(hlo, 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(hhi, 4));
            }
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16((short)((sc >> (16 * j)) & 0xFF))));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16((short)((sc >> (16 * j + 8)) & 0xFF))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(FP16(x->d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32_8(acc) + acc_min;
}

void vec_dot_q4_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    k4_dot(n, s, vx, vy, 0);
}

void vec_dot_q5_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    k4_dot(n, s, vx, vy, 1);
}

/* sum over the 16 sub-blocks of scales[j] * bsums[j] (scales as int8) */
static inline int scales_dot_bsums(const int8_t scales[16], const int16_t bsums[16]) {
    const __m128i lo = _mm_madd_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)scales)),
                                      _mm_loadu_si128((const __m128i *)bsums));
    const __m128i hi = _mm_madd_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(scales + 8))),
                                      _mm_loadu_si128((const __m128i *)(bsums + 8)));
    __m128i s = _mm_add_epi32(lo, hi);
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1))));
}

/* 32 levels (one per byte) times 32 activations, with sub-block scales s0 (first 16) and s1 */
static inline __m256i scaled_dot_32(__m256i levels, const int8_t *a, int s0, int s1) {
    const __m256i p = _mm256_maddubs_epi16(levels, _mm256_loadu_si256((const __m256i *)a));
    return _mm256_madd_epi16(p, _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0)));
}

void vec_dot_q2_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    float acc_min = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        PREFETCH_WEIGHTS(x + i);
        PREFETCH_WEIGHTS((const char *)(x + i) + 64);
        int8_t mins[16];
        for (int j = 0; j < 16; j++) mins[j] = (int8_t)(x[i].scales[j] >> 4);
        acc_min -= FP16(x[i].dmin) * y[i].d * scales_dot_bsums(mins, y[i].bsums);
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * half));
            for (int k = 0; k < 4; k++) { /* 2-bit field k of each byte: elements 128*half + 32*k + l */
                const __m256i levels = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * k)), m3);
                const int sb = 8 * half + 2 * k;
                sumi = _mm256_add_epi32(sumi, scaled_dot_32(levels, y[i].qs + 128 * half + 32 * k,
                                                            x[i].scales[sb] & 0xF, x[i].scales[sb + 1] & 0xF));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(FP16(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32_8(acc) + acc_min;
}

void vec_dot_q3_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        PREFETCH_WEIGHTS(x + i);
        PREFETCH_WEIGHTS((const char *)(x + i) + 64);
        int8_t sc[16];
        gk_scales_q3_K(x[i].scales, sc);
        for (int j = 0; j < 16; j++) sc[j] -= 32;
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * half));
            for (int k = 0; k < 4; k++) {
                /* level + 4 = low 2 bits | hmask bit (4*half + k) << 2, unsigned 0..7 */
                const __m256i low = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * k)), m3);
                const __m256i high = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * half + k)), one);
                const __m256i levels = _mm256_or_si256(low, _mm256_slli_epi16(high, 2));
                const int sb = 8 * half + 2 * k;
                sumi = _mm256_add_epi32(sumi, scaled_dot_32(levels, y[i].qs + 128 * half + 32 * k, sc[sb], sc[sb + 1]));
            }
        }
        /* (u - 4).a = u.a - 4 * sum(a) per sub-block, from the activations' bsums */
        const int corr = 4 * scales_dot_bsums(sc, y[i].bsums);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(FP16(x[i].d) * y[i].d),
                              _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, _mm256_setr_epi32(corr, 0, 0, 0, 0, 0, 0, 0))), acc);
    }
    *s = hsum_f32_8(acc);
}
