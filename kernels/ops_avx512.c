/* The ops' row kernels for AVX-512 (F, BW, VL, DQ) with F16C: 16 floats per step, tails under a
 * lane mask (native in AVX-512, so one loop shape serves body and tail). Helpers are always
 * inlined (and named *_avx512): no wide code may sit in a function the generic path could call. */
#include "ops.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))

/* lanes < n - i: all 16 but at the tail */
INL __mmask16 lanes_avx512(int64_t i, int64_t n) {
    return n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
}

/* e^x as exp_avx2 (ops_avx2.c): k = round(x/ln2), Taylor polynomial to r^7 on |r| <= ln2/2; the
 * scaling by 2^k is vscalefps, which itself gives subnormals, 0 and inf at the ends. */
INL __m512 exp_avx512(__m512 x) {
    const __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x)); /* NaN kept */
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

INL __m512 x_sigmoid_avx512(__m512 x, __m512 z) {
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), z));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

INL __m512 silu16_avx512(__m512 x) { return x_sigmoid_avx512(x, x); }

INL __m512 gelu16_avx512(__m512 x) {
    const __m512 x2 = _mm512_mul_ps(x, x);
    const __m512 z = _mm512_mul_ps(x, _mm512_fmadd_ps(_mm512_set1_ps(GK_GELU_B), x2, _mm512_set1_ps(GK_GELU_A)));
    return x_sigmoid_avx512(x, z);
}


/* y[i] = exp(y[i] - shift) in place over n floats; returns their sum (softmax and attention) */
INL float exp_shift_sum_avx512(float *y, int64_t n, float shift) {
    const __m512 mv = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes_avx512(i, n);
        const __m512 e = _mm512_maskz_mov_ps(m, exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, y + i), mv)));
        _mm512_mask_storeu_ps(y + i, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

void rms_norm_f32_avx512(float *y, const float *x, const float *w, int64_t n, float eps) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
        a0 = _mm512_fmadd_ps(v0, v0, a0);
        a1 = _mm512_fmadd_ps(v1, v1, a1);
    }
    for (; i < n; i += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(lanes_avx512(i, n), x + i);
        a0 = _mm512_fmadd_ps(v, v, a0);
    }
    const double ss = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    const __m512 r = _mm512_set1_ps((float)(1.0 / sqrt(ss / (double)n + eps)));
    for (i = 0; i < n; i += 16) {
        const __mmask16 m = lanes_avx512(i, n);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), r);
        if (w)
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

void layer_norm_f32_avx512(float *y, const float *x, const float *w, const float *b, int64_t n, float eps) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16)
        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(lanes_avx512(i, n), x + i));
    const float mean = _mm512_reduce_add_ps(acc) / (float)n;
    const __m512 mv = _mm512_set1_ps(mean);
    acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) { /* second pass over x - mean: no cancellation */
        const __mmask16 m = lanes_avx512(i, n);
        const __m512 dv = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), mv);
        acc = _mm512_fmadd_ps(dv, dv, acc);
    }
    const __m512 r = _mm512_set1_ps((float)(1.0 / sqrt((double)_mm512_reduce_add_ps(acc) / (double)n + eps)));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes_avx512(i, n);
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv), r);
        if (w)
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
        if (b)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

void softmax_f32_avx512(float *y, const float *x, const float *mask, int64_t n, float scale) {
    const __m512 sv = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes_avx512(i, n);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sv);
        if (mask)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, mask + i));
        _mm512_mask_storeu_ps(y + i, m, v);
        mx = _mm512_mask_max_ps(mx, m, mx, v);
    }
    const float mxs = _mm512_reduce_max_ps(mx);
    if (mxs == -INFINITY) {
        memset(y, 0, (size_t)n * sizeof(float));
        return;
    }
    const __m512 inv = _mm512_set1_ps(1.0f / exp_shift_sum_avx512(y, n, mxs));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes_avx512(i, n);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), inv));
    }
}

#define UNARY_AVX512(expr)                                                                                             \
    for (int64_t i = 0; i < n; i += 16) {                                                                              \
        const __mmask16 m = lanes_avx512(i, n);                                                                        \
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);                                                              \
        _mm512_mask_storeu_ps(y + i, m, expr);                                                                         \
    }

void silu_f32_avx512(float *y, const float *x, int64_t n) { UNARY_AVX512(silu16_avx512(v)) }
void gelu_f32_avx512(float *y, const float *x, int64_t n) { UNARY_AVX512(gelu16_avx512(v)) }
void scale_f32_avx512(float *y, const float *x, float s, int64_t n) { UNARY_AVX512(_mm512_mul_ps(v, _mm512_set1_ps(s))) }

#define BINARY_AVX512(expr)                                                                                            \
    for (int64_t i = 0; i < n; i += 16) {                                                                              \
        const __mmask16 m = lanes_avx512(i, n);                                                                        \
        const __m512 va = _mm512_maskz_loadu_ps(m, a + i), vb = _mm512_maskz_loadu_ps(m, b + i);                       \
        _mm512_mask_storeu_ps(y + i, m, expr);                                                                         \
    }

void swiglu_f32_avx512(float *y, const float *a, const float *b, int64_t n) { BINARY_AVX512(_mm512_mul_ps(silu16_avx512(va), vb)) }
void add_f32_avx512(float *y, const float *a, const float *b, int64_t n) { BINARY_AVX512(_mm512_add_ps(va, vb)) }
void mul_f32_avx512(float *y, const float *a, const float *b, int64_t n) { BINARY_AVX512(_mm512_mul_ps(va, vb)) }

void f32_to_f16_avx512(gk_fp16 *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) { /* rounds to nearest even, as gk_fp32_to_fp16 does */
        const __mmask16 m = lanes_avx512(i, n);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_mask_storeu_epi16(y + i, m, h);
    }
}

/* up to 16 cache values from F32 or F16, lanes outside m zero (f16 constant at each call site) */
INL __m512 load_kv_avx512(const void *base, int64_t i, __mmask16 m, int f16) {
    if (f16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const gk_fp16 *)base + i));
    return _mm512_maskz_loadu_ps(m, (const float *)base + i);
}

/* q . k for one cache row: 32 lanes, then masked 16 */
INL float dot_qk_avx512(const float *q, const void *k, int64_t d, int f16) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= d; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load_kv_avx512(k, i, 0xFFFF, f16), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), load_kv_avx512(k, i + 16, 0xFFFF, f16), a1);
    }
    for (; i < d; i += 16) {
        const __mmask16 m = lanes_avx512(i, d);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), load_kv_avx512(k, i, m, f16), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

#define GK_ATTN_BLOCK 32 /* visible slots scored, then weighted, at a time */

/* attn_head_avx512's online softmax for the G query heads (1 <= G <= GK_ATTN_MAX_GROUP) that share
 * one kv head, 64 wide: each cache row is loaded and widened once for all of them, and each head's
 * output row stays in four registers while its block's value rows are added (instead of a load and
 * a store of the row per slot). Every head's arithmetic is its own, in the same order whatever G
 * (the same bits): its scores, its block's rescale, its value sums. q and out hold the G heads' rows
 * one after another. */
INL void attn_group_64_avx512(float *out, const float *q, int32_t qp, int64_t kv0, const gk_attn_params *p, int G,
                              int f16) {
    const int64_t d = 64, stride = p->n_head_kv * d;
    const size_t esz = f16 ? sizeof(gk_fp16) : sizeof(float);
    const char *kb = (const char *)p->k + kv0 * esz, *vb = (const char *)p->v + kv0 * esz;
    float sc[GK_ATTN_MAX_GROUP][GK_ATTN_BLOCK], M[GK_ATTN_MAX_GROUP], S[GK_ATTN_MAX_GROUP];
    int64_t idx[GK_ATTN_BLOCK];
    int live[GK_ATTN_MAX_GROUP];
    for (int g = 0; g < G; g++) {
        M[g] = -INFINITY;
        S[g] = 0;
    }
    memset(out, 0, (size_t)(G * d) * sizeof(float));
    for (int64_t j = 0; j < p->n_kv;) {
        int nb = 0;
        for (; j < p->n_kv && nb < GK_ATTN_BLOCK; j++)
            if (gk_attn_visible(p, qp, j))
                idx[nb++] = j;
        float bm[GK_ATTN_MAX_GROUP];
        for (int g = 0; g < G; g++)
            bm[g] = -INFINITY;
        for (int b = 0; b < nb; b++) {
            const char *k = kb + idx[b] * stride * esz;
            { /* the value row this slot will need next, fetched while the scores are worked out, and
               * the key row a few slots on */
                const char *v = vb + idx[b] * stride * esz;
                _mm_prefetch(v, _MM_HINT_T0);
                _mm_prefetch(v + 64, _MM_HINT_T0);
                if (b + 4 < nb) {
                    const char *kn = kb + idx[b + 4] * stride * esz;
                    _mm_prefetch(kn, _MM_HINT_T0);
                    _mm_prefetch(kn + 64, _MM_HINT_T0);
                }
            }
            const __m512 k0 = load_kv_avx512(k, 0, 0xFFFF, f16), k1 = load_kv_avx512(k, 16, 0xFFFF, f16),
                         k2 = load_kv_avx512(k, 32, 0xFFFF, f16), k3 = load_kv_avx512(k, 48, 0xFFFF, f16);
            for (int g = 0; g < G; g++) { /* dot_qk_avx512's order: lanes 0-15 and 32-47, then 16-31 and 48-63 */
                const float *qg = q + g * d;
                __m512 a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qg), k0, _mm512_setzero_ps());
                __m512 a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16), k1, _mm512_setzero_ps());
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 32), k2, a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 48), k3, a1);
                float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * p->scale;
                if (p->softcap > 0)
                    s = p->softcap * tanhf(s / p->softcap);
                sc[g][b] = s;
                bm[g] = s > bm[g] ? s : bm[g];
            }
        }
        int any = 0;
        for (int g = 0; g < G; g++) {
            live[g] = bm[g] != -INFINITY; /* else nothing visible to this head here (or only -inf scores) */
            if (!live[g])
                continue;
            any = 1;
            const float Mn = bm[g] > M[g] ? bm[g] : M[g], ms = expf(M[g] - Mn);
            S[g] = S[g] * ms + exp_shift_sum_avx512(sc[g], nb, Mn);
            M[g] = Mn;
            if (ms != 1.0f) {
                const __m512 msv = _mm512_set1_ps(ms);
                for (int64_t i = 0; i < d; i += 16)
                    _mm512_storeu_ps(out + g * d + i, _mm512_mul_ps(_mm512_loadu_ps(out + g * d + i), msv));
            }
        }
        if (!any)
            continue;
        __m512 o[GK_ATTN_MAX_GROUP][4];
        for (int g = 0; g < G; g++)
            for (int i = 0; i < 4; i++)
                o[g][i] = _mm512_loadu_ps(out + g * d + 16 * i);
        for (int b = 0; b < nb; b++) { /* in slot order, each head into its own registers */
            const char *v = vb + idx[b] * stride * esz;
            const __m512 v0 = load_kv_avx512(v, 0, 0xFFFF, f16), v1 = load_kv_avx512(v, 16, 0xFFFF, f16),
                         v2 = load_kv_avx512(v, 32, 0xFFFF, f16), v3 = load_kv_avx512(v, 48, 0xFFFF, f16);
            for (int g = 0; g < G; g++) {
                if (!live[g])
                    continue;
                const __m512 pv = _mm512_set1_ps(sc[g][b]);
                o[g][0] = _mm512_fmadd_ps(pv, v0, o[g][0]);
                o[g][1] = _mm512_fmadd_ps(pv, v1, o[g][1]);
                o[g][2] = _mm512_fmadd_ps(pv, v2, o[g][2]);
                o[g][3] = _mm512_fmadd_ps(pv, v3, o[g][3]);
            }
        }
        for (int g = 0; g < G; g++)
            for (int i = 0; i < 4; i++)
                _mm512_storeu_ps(out + g * d + 16 * i, o[g][i]);
    }
    for (int g = 0; g < G; g++) {
        const __m512 inv = _mm512_set1_ps(S[g] > 0 ? 1.0f / S[g] : 0.0f);
        for (int64_t i = 0; i < d; i += 16)
            _mm512_storeu_ps(out + g * d + i, _mm512_mul_ps(_mm512_loadu_ps(out + g * d + i), inv));
    }
}

/* The online softmax of attn_head_f32 (ops.c) in blocks of up to GK_ATTN_BLOCK visible slots, as
 * attn_head_avx2 (ops_avx2.c) does: the block's scores, one rescale, the block's weights by the
 * vector exp, then their value rows. Still one pass over K and V. */
INL void attn_head_avx512(float *out, const float *q, int32_t qp, int64_t kv0, const gk_attn_params *p, int f16) {
    if (p->head_dim == 64) { /* SmolLM2's and most small models' heads */
        attn_group_64_avx512(out, q, qp, kv0, p, 1, f16);
        return;
    }
    const int64_t d = p->head_dim, stride = p->n_head_kv * d;
    const size_t esz = f16 ? sizeof(gk_fp16) : sizeof(float);
    const char *kb = (const char *)p->k + kv0 * esz, *vb = (const char *)p->v + kv0 * esz;
    float sc[GK_ATTN_BLOCK];
    int64_t idx[GK_ATTN_BLOCK];
    float M = -INFINITY, S = 0;
    memset(out, 0, (size_t)d * sizeof(float));
    for (int64_t j = 0; j < p->n_kv;) {
        int nb = 0;
        for (; j < p->n_kv && nb < GK_ATTN_BLOCK; j++)
            if (gk_attn_visible(p, qp, j))
                idx[nb++] = j;
        float bm = -INFINITY;
        for (int b = 0; b < nb; b++) {
            float s = dot_qk_avx512(q, kb + idx[b] * stride * esz, d, f16) * p->scale;
            if (p->softcap > 0)
                s = p->softcap * tanhf(s / p->softcap);
            sc[b] = s;
            bm = s > bm ? s : bm;
        }
        if (bm == -INFINITY) /* nothing visible here (or only -inf scores) */
            continue;
        const float Mn = bm > M ? bm : M, ms = expf(M - Mn);
        S = S * ms + exp_shift_sum_avx512(sc, nb, Mn);
        M = Mn;
        if (ms != 1.0f) {
            const __m512 msv = _mm512_set1_ps(ms);
            for (int64_t i = 0; i < d; i += 16) {
                const __mmask16 m = lanes_avx512(i, d);
                _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, out + i), msv));
            }
        }
        for (int b = 0; b < nb; b++) {
            const char *v = vb + idx[b] * stride * esz;
            const __m512 pv = _mm512_set1_ps(sc[b]);
            for (int64_t i = 0; i < d; i += 16) {
                const __mmask16 m = lanes_avx512(i, d);
                const __m512 o = _mm512_maskz_loadu_ps(m, out + i);
                _mm512_mask_storeu_ps(out + i, m, _mm512_fmadd_ps(pv, load_kv_avx512(v, i, m, f16), o));
            }
        }
    }
    const __m512 inv = _mm512_set1_ps(S > 0 ? 1.0f / S : 0.0f);
    for (int64_t i = 0; i < d; i += 16) {
        const __mmask16 m = lanes_avx512(i, d);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, out + i), inv));
    }
}

void attn_group_64_f32_avx512(float *out, const float *q, int32_t qp, int64_t kv0, const gk_attn_params *p, int G) {
    if (p->f16)
        attn_group_64_avx512(out, q, qp, kv0, p, G, 1);
    else
        attn_group_64_avx512(out, q, qp, kv0, p, G, 0);
}

void attn_head_f32_avx512(float *out, const float *q, int32_t qp, int64_t kv0, const gk_attn_params *p) {
    if (p->f16)
        attn_head_avx512(out, q, qp, kv0, p, 1);
    else
        attn_head_avx512(out, q, qp, kv0, p, 0);
}
