/* The ops' row kernels for AVX2 + FMA + F16C: 8 floats per step, masked loads for the tails so
 * that every element goes through the same vector math. Helpers are always inlined (and named
 * *_avx2): no wide code may sit in a function the generic path could call. */
#include "ops.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))

/* lanes < r all ones: the mask of a tail of r < 8 floats */
INL __m256i tail_mask_avx2(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* the tail's r floats, the other lanes set to pad */
INL __m256 load_tail_avx2(const float *x, __m256i m, float pad) {
    return _mm256_blendv_ps(_mm256_set1_ps(pad), _mm256_maskload_ps(x, m), _mm256_castsi256_ps(m));
}

INL float hsum_avx2(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

INL float hmax_avx2(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* e^x: x = k ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact k ln2), e^r by its Taylor
 * polynomial to r^7 (truncation < 1e-8), times 2^k built in the exponent bits. Within 2 ulp;
 * 0 below ln(FLT_MIN) (flushing what would be subnormal), inf above 88.376, NaN kept. */
INL __m256 exp_avx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654475f), hi = _mm256_set1_ps(88.3762626647949f);
    const __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x)); /* operand order lets NaN through */
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
}

/* x / (1 + e^(-z)): SiLU with z = x, GELU (tanh form, see ops.h) with z = 2u */
INL __m256 x_sigmoid_avx2(__m256 x, __m256 z) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), z));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

INL __m256 silu8_avx2(__m256 x) { return x_sigmoid_avx2(x, x); }

INL __m256 gelu8_avx2(__m256 x) {
    const __m256 x2 = _mm256_mul_ps(x, x);
    const __m256 z = _mm256_mul_ps(x, _mm256_fmadd_ps(_mm256_set1_ps(GK_GELU_B), x2, _mm256_set1_ps(GK_GELU_A)));
    return x_sigmoid_avx2(x, z);
}


/* y[i] = exp(y[i] - shift) in place over n floats; returns their sum (softmax and attention) */
INL float exp_shift_sum_avx2(float *y, int64_t n, float shift) {
    const __m256 mv = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = tail_mask_avx2(n - i);
        const __m256 e = _mm256_and_ps(exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(y + i, m), mv)), _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(y + i, m, e);
        sum = _mm256_add_ps(sum, e);
    }
    return hsum_avx2(sum);
}

void rms_norm_f32_avx2(float *y, const float *x, const float *w, int64_t n, float eps) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
    }
    for (; i < n; i += 8) {
        const __m256 v = load_tail_avx2(x + i, tail_mask_avx2(n - i), 0.0f);
        a0 = _mm256_fmadd_ps(v, v, a0);
    }
    const double ss = hsum_avx2(_mm256_add_ps(a0, a1));
    const __m256 r = _mm256_set1_ps((float)(1.0 / sqrt(ss / (double)n + eps)));
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), r);
        _mm256_storeu_ps(y + i, w ? _mm256_mul_ps(v, _mm256_loadu_ps(w + i)) : v);
    }
    if (i < n) {
        const __m256i m = tail_mask_avx2(n - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), r);
        _mm256_maskstore_ps(y + i, m, w ? _mm256_mul_ps(v, _mm256_maskload_ps(w + i, m)) : v);
    }
}

void layer_norm_f32_avx2(float *y, const float *x, const float *w, const float *b, int64_t n, float eps) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i < n; i += 8)
        acc = _mm256_add_ps(acc, i + 8 <= n ? _mm256_loadu_ps(x + i) : load_tail_avx2(x + i, tail_mask_avx2(n - i), 0));
    const float mean = hsum_avx2(acc) / (float)n;
    const __m256 mv = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (i = 0; i < n; i += 8) { /* second pass over x - mean: no cancellation */
        const __m256 v = i + 8 <= n ? _mm256_loadu_ps(x + i) : load_tail_avx2(x + i, tail_mask_avx2(n - i), mean);
        const __m256 dv = _mm256_sub_ps(v, mv);
        acc = _mm256_fmadd_ps(dv, dv, acc);
    }
    const __m256 r = _mm256_set1_ps((float)(1.0 / sqrt((double)hsum_avx2(acc) / (double)n + eps)));
    for (i = 0; i < n; i += 8) {
        const __m256i m = tail_mask_avx2(n - i); /* all ones but at the tail */
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), mv), r);
        if (w)
            v = _mm256_mul_ps(v, _mm256_maskload_ps(w + i, m));
        if (b)
            v = _mm256_add_ps(v, _mm256_maskload_ps(b + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

void softmax_f32_avx2(float *y, const float *x, const float *mask, int64_t n, float scale) {
    const __m256 sv = _mm256_set1_ps(scale);
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = tail_mask_avx2(n - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), sv);
        if (mask)
            v = _mm256_add_ps(v, _mm256_maskload_ps(mask + i, m));
        _mm256_maskstore_ps(y + i, m, v);
        mx = _mm256_max_ps(mx, _mm256_blendv_ps(mx, v, _mm256_castsi256_ps(m)));
    }
    const float mxs = hmax_avx2(mx);
    if (mxs == -INFINITY) {
        memset(y, 0, (size_t)n * sizeof(float));
        return;
    }
    const __m256 inv = _mm256_set1_ps(1.0f / exp_shift_sum_avx2(y, n, mxs));
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = tail_mask_avx2(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(y + i, m), inv));
    }
}

/* y = f(x) lane-wise over n floats; plain loads and stores but at the masked tail (masked
 * stores are slow on some cores) */
#define UNARY_AVX2(expr)                                                                                               \
    int64_t i = 0;                                                                                                     \
    for (; i + 8 <= n; i += 8) {                                                                                       \
        const __m256 v = _mm256_loadu_ps(x + i);                                                                       \
        _mm256_storeu_ps(y + i, expr);                                                                                 \
    }                                                                                                                  \
    if (i < n) {                                                                                                       \
        const __m256i m = tail_mask_avx2(n - i);                                                                       \
        const __m256 v = _mm256_maskload_ps(x + i, m);                                                                 \
        _mm256_maskstore_ps(y + i, m, expr);                                                                           \
    }

void silu_f32_avx2(float *y, const float *x, int64_t n) { UNARY_AVX2(silu8_avx2(v)) }
void gelu_f32_avx2(float *y, const float *x, int64_t n) { UNARY_AVX2(gelu8_avx2(v)) }
void scale_f32_avx2(float *y, const float *x, float s, int64_t n) { UNARY_AVX2(_mm256_mul_ps(v, _mm256_set1_ps(s))) }

#define BINARY_AVX2(expr)                                                                                              \
    int64_t i = 0;                                                                                                     \
    for (; i + 8 <= n; i += 8) {                                                                                       \
        const __m256 va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i);                                         \
        _mm256_storeu_ps(y + i, expr);                                                                                 \
    }                                                                                                                  \
    if (i < n) {                                                                                                       \
        const __m256i m = tail_mask_avx2(n - i);                                                                       \
        const __m256 va = _mm256_maskload_ps(a + i, m), vb = _mm256_maskload_ps(b + i, m);                             \
        _mm256_maskstore_ps(y + i, m, expr);                                                                           \
    }

void swiglu_f32_avx2(float *y, const float *a, const float *b, int64_t n) { BINARY_AVX2(_mm256_mul_ps(silu8_avx2(va), vb)) }
void add_f32_avx2(float *y, const float *a, const float *b, int64_t n) { BINARY_AVX2(_mm256_add_ps(va, vb)) }
void mul_f32_avx2(float *y, const float *a, const float *b, int64_t n) { BINARY_AVX2(_mm256_mul_ps(va, vb)) }

void f32_to_f16_avx2(gk_fp16 *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) /* F16C rounds to nearest even, as gk_fp32_to_fp16 does */
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    if (i < n) {
        gk_fp16 tmp[8];
        _mm_storeu_si128((__m128i *)tmp, _mm256_cvtps_ph(load_tail_avx2(x + i, tail_mask_avx2(n - i), 0.0f),
                                                          _MM_FROUND_TO_NEAREST_INT));
        memcpy(y + i, tmp, (size_t)(n - i) * sizeof(gk_fp16));
    }
}

/* 8 cache values from F32 or F16 (f16 is a constant at each inlined call site) */
INL __m256 load_kv_avx2(const void *base, int64_t i, int f16) {
    if (f16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gk_fp16 *)base + i)));
    return _mm256_loadu_ps((const float *)base + i);
}

INL float load_kv1_avx2(const void *base, int64_t i, int f16) {
    return f16 ? _cvtsh_ss(((const gk_fp16 *)base)[i]) : ((const float *)base)[i];
}

/* q . k for one cache row, 16 then 8 lanes, scalar tail */
INL float dot_qk_avx2(const float *q, const void *k, int64_t d, int f16) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_kv_avx2(k, i, f16), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load_kv_avx2(k, i + 8, f16), a1);
    }
    if (i + 8 <= d) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_kv_avx2(k, i, f16), a0);
        i += 8;
    }
    float s = hsum_avx2(_mm256_add_ps(a0, a1));
    for (; i < d; i++)
        s += q[i] * load_kv1_avx2(k, i, f16);
    return s;
}

/* The online softmax of attn_head_f32 (ops.c), a block of up to GK_ATTN_BLOCK visible slots at a
 * time: the block's scores (independent dot products, so they overlap in the pipeline), one
 * rescale of what was accumulated by exp(M_old - M_new), the block's weights by the vector exp,
 * then their value rows added. Still one pass over K and V. */
#define GK_ATTN_BLOCK 32
INL void attn_head_avx2(float *out, const float *q, int32_t qp, int64_t kv0, const gk_attn_params *p, int f16) {
    const int64_t d = p->head_dim, stride = p->n_head_kv * d, d8 = d & ~(int64_t)7;
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
            float s = dot_qk_avx2(q, kb + idx[b] * stride * esz, d, f16) * p->scale;
            if (p->softcap > 0)
                s = p->softcap * tanhf(s / p->softcap);
            sc[b] = s;
            bm = s > bm ? s : bm;
        }
        if (bm == -INFINITY) /* nothing visible here (or only -inf scores) */
            continue;
        const float Mn = bm > M ? bm : M, ms = expf(M - Mn);
        S = S * ms + exp_shift_sum_avx2(sc, nb, Mn);
        M = Mn;
        if (ms != 1.0f) {
            const __m256 msv = _mm256_set1_ps(ms);
            int64_t i = 0;
            for (; i < d8; i += 8)
                _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), msv));
            for (; i < d; i++)
                out[i] *= ms;
        }
        for (int b = 0; b < nb; b++) {
            const char *v = vb + idx[b] * stride * esz;
            const __m256 pv = _mm256_set1_ps(sc[b]);
            int64_t i = 0;
            for (; i < d8; i += 8)
                _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, load_kv_avx2(v, i, f16), _mm256_loadu_ps(out + i)));
            for (; i < d; i++)
                out[i] += sc[b] * load_kv1_avx2(v, i, f16);
        }
    }
    const float inv = S > 0 ? 1.0f / S : 0.0f;
    const __m256 iv = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i < d8; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), iv));
    for (; i < d; i++)
        out[i] *= inv;
}

void attn_head_f32_avx2(float *out, const float *q, int32_t qp, int64_t kv0, const gk_attn_params *p) {
    if (p->f16)
        attn_head_avx2(out, q, qp, kv0, p, 1);
    else
        attn_head_avx2(out, q, qp, kv0, p, 0);
}
