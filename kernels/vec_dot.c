/* Dot products of a weight row with activations in its vec_dot_type (see quants.h), generic C.
 * Each weight block is unpacked to small integers, dotted in int32 with the int8 activations, and
 * scaled once per block; the K-quants go through one 16-element-sub-block form (q, scale, min). */
#include "quants.h"

void vec_dot_f32_f32(int64_t n, float *restrict s, const void *restrict x, const void *restrict y) {
    *s = dot_f32(x, y, n);
}

void vec_dot_f16_f32(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const gk_fp16 *x = vx;
    const float *y = vy;
    double acc[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) acc[k] += (double)gk_fp16_to_fp32(x[i + k]) * y[i + k];
    for (; i < n; i++) acc[0] += (double)gk_fp16_to_fp32(x[i]) * y[i];
    *s = (float)(acc[0] + acc[1] + acc[2] + acc[3]);
}

void vec_dot_bf16_f32(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const gk_bf16 *x = vx;
    const float *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)gk_bf16_to_fp32(x[i]) * y[i];
    *s = (float)acc;
}

static inline int dot_i8(const int8_t *restrict a, const int8_t *restrict b, int n) {
    int sum = 0;
    for (int l = 0; l < n; l++) sum += a[l] * b[l];
    return sum;
}

/* ---- 32-element blocks ---------------------------------------------------------------------- */

/* low nibbles are elements 0..15, high nibbles 16..31 */
static inline void unpack_nibbles(const uint8_t *restrict qs, int8_t offset, int8_t *restrict q) {
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 0x0F) - offset);
        q[j + 16] = (int8_t)((qs[j] >> 4) - offset);
    }
}

static inline void unpack_5bit(const uint8_t *restrict qs, const uint8_t *restrict qh4, int8_t offset,
                               int8_t *restrict q) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - offset);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - offset);
    }
}

void vec_dot_q4_0_q8_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / QK8_0; i++) {
        unpack_nibbles(x[i].qs, 8, q);
        sum += gk_fp16_to_fp32(x[i].d) * gk_fp16_to_fp32(y[i].d) * dot_i8(q, y[i].qs, 32);
    }
    *s = sum;
}

/* d q.a + m sum(a): the activations carry sum(a) exactly (Q8_0S) */
void vec_dot_q4_1_q8_0s(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_1 *x = vx;
    const block_q8_0s *y = vy;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / QK8_0; i++) {
        unpack_nibbles(x[i].qs, 0, q);
        const float dy = gk_fp16_to_fp32(y[i].d);
        sum += gk_fp16_to_fp32(x[i].d) * dy * dot_i8(q, y[i].qs, 32) + gk_fp16_to_fp32(x[i].m) * dy * y[i].s;
    }
    *s = sum;
}

void vec_dot_q5_0_q8_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / QK8_0; i++) {
        unpack_5bit(x[i].qs, x[i].qh, 16, q);
        sum += gk_fp16_to_fp32(x[i].d) * gk_fp16_to_fp32(y[i].d) * dot_i8(q, y[i].qs, 32);
    }
    *s = sum;
}

void vec_dot_q5_1_q8_0s(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q5_1 *x = vx;
    const block_q8_0s *y = vy;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / QK8_0; i++) {
        unpack_5bit(x[i].qs, x[i].qh, 0, q);
        const float dy = gk_fp16_to_fp32(y[i].d);
        sum += gk_fp16_to_fp32(x[i].d) * dy * dot_i8(q, y[i].qs, 32) + gk_fp16_to_fp32(x[i].m) * dy * y[i].s;
    }
    *s = sum;
}

void vec_dot_q8_0_q8_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / QK8_0; i++)
        sum += gk_fp16_to_fp32(x[i].d) * gk_fp16_to_fp32(y[i].d) * dot_i8(x[i].qs, y[i].qs, 32);
    *s = sum;
}

void vec_dot_iq4_nl_q8_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_iq4_nl *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / QK8_0; i++) {
        for (int j = 0; j < 16; j++) {
            q[j] = gk_kvalues_iq4nl[x[i].qs[j] & 0xF];
            q[j + 16] = gk_kvalues_iq4nl[x[i].qs[j] >> 4];
        }
        sum += gk_fp16_to_fp32(x[i].d) * gk_fp16_to_fp32(y[i].d) * dot_i8(q, y[i].qs, 32);
    }
    *s = sum;
}

/* ---- K-quants: 256-element super-blocks, seen as 16 sub-blocks of 16 -------------------------- */

typedef struct {
    int8_t q[QK_K]; /* the integer levels, in element order */
    int sc[16];     /* integer scale of each 16-element sub-block */
    int mn[16];     /* integer min of each sub-block (types with a min) */
    float d, dmin;
} kblock;

/* d*yd*sum(sc * q.y) - dmin*yd*sum(mn * ysum), with every product in int32 */
static inline float dot_kblock(const kblock *restrict b, const block_q8_K *restrict y, int has_min) {
    int sumi = 0, summ = 0;
    for (int j = 0; j < 16; j++) {
        sumi += b->sc[j] * dot_i8(b->q + 16 * j, y->qs + 16 * j, 16);
        if (has_min) summ += b->mn[j] * y->bsums[j];
    }
    return b->d * y->d * sumi - (has_min ? b->dmin * y->d * summ : 0.0f);
}

static void unpack_q2_K(const block_q2_K *restrict x, kblock *restrict b) {
    b->d = gk_fp16_to_fp32(x->d);
    b->dmin = gk_fp16_to_fp32(x->dmin);
    for (int j = 0; j < 16; j++) {
        b->sc[j] = x->scales[j] & 0xF;
        b->mn[j] = x->scales[j] >> 4;
    }
    int8_t *q = b->q;
    for (int half = 0; half < 2; half++)
        for (int shift = 0; shift < 8; shift += 2)
            for (int l = 0; l < 32; l++) *q++ = (x->qs[32 * half + l] >> shift) & 3;
}

static void unpack_q3_K(const block_q3_K *restrict x, kblock *restrict b) {
    int8_t scales[16];
    gk_scales_q3_K(x->scales, scales);
    b->d = gk_fp16_to_fp32(x->d);
    for (int j = 0; j < 16; j++) b->sc[j] = scales[j] - 32;
    int8_t *q = b->q;
    uint8_t m = 1;
    for (int half = 0; half < 2; half++)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            for (int l = 0; l < 32; l++)
                *q++ = (int8_t)(((x->qs[32 * half + l] >> shift) & 3) - ((x->hmask[l] & m) ? 0 : 4));
}

static void unpack_q4_K(const block_q4_K *restrict x, kblock *restrict b) {
    b->d = gk_fp16_to_fp32(x->d);
    b->dmin = gk_fp16_to_fp32(x->dmin);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        gk_scale_min_k4(j, x->scales, &sc, &m);
        b->sc[2 * j] = b->sc[2 * j + 1] = sc;
        b->mn[2 * j] = b->mn[2 * j + 1] = m;
    }
    for (int j = 0; j < 4; j++)
        for (int l = 0; l < 32; l++) {
            b->q[64 * j + l] = x->qs[32 * j + l] & 0xF;
            b->q[64 * j + 32 + l] = x->qs[32 * j + l] >> 4;
        }
}

static void unpack_q5_K(const block_q5_K *restrict x, kblock *restrict b) {
    b->d = gk_fp16_to_fp32(x->d);
    b->dmin = gk_fp16_to_fp32(x->dmin);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        gk_scale_min_k4(j, x->scales, &sc, &m);
        b->sc[2 * j] = b->sc[2 * j + 1] = sc;
        b->mn[2 * j] = b->mn[2 * j + 1] = m;
    }
    for (int j = 0; j < 4; j++)
        for (int l = 0; l < 32; l++) {
            const uint8_t lo = (uint8_t)(1u << (2 * j)), hi = (uint8_t)(2u << (2 * j));
            b->q[64 * j + l] = (x->qs[32 * j + l] & 0xF) + ((x->qh[l] & lo) ? 16 : 0);
            b->q[64 * j + 32 + l] = (x->qs[32 * j + l] >> 4) + ((x->qh[l] & hi) ? 16 : 0);
        }
}

static void unpack_q6_K(const block_q6_K *restrict x, kblock *restrict b) {
    b->d = gk_fp16_to_fp32(x->d);
    for (int j = 0; j < 16; j++) b->sc[j] = x->scales[j];
    for (int half = 0; half < 2; half++) {
        const uint8_t *ql = x->ql + 64 * half, *qh = x->qh + 32 * half;
        int8_t *q = b->q + 128 * half;
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            q[l + 32] = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            q[l + 64] = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            q[l + 96] = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        }
    }
}

#define VEC_DOT_K(T, HAS_MIN)                                                                           \
    void vec_dot_##T##_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) { \
        const block_##T *x = vx;                                                                         \
        const block_q8_K *y = vy;                                                                        \
        kblock b;                                                                                        \
        float sum = 0;                                                                                   \
        for (int64_t i = 0; i < n / QK_K; i++) {                                                         \
            unpack_##T(&x[i], &b);                                                                       \
            sum += dot_kblock(&b, &y[i], HAS_MIN);                                                       \
        }                                                                                                \
        *s = sum;                                                                                        \
    }

VEC_DOT_K(q2_K, 1)
VEC_DOT_K(q3_K, 0)
VEC_DOT_K(q4_K, 1)
VEC_DOT_K(q5_K, 1)
VEC_DOT_K(q6_K, 0)
