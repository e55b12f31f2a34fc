/* The non-quantized ops: generic row kernels, the one dispatch table of the ops, and the threaded
 * whole-tensor entry points (see ops.h). Built with baseline flags; the compiler may use SSE2. */
#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many floats of work a row op stays on the calling thread: forking costs a few
 * microseconds, about what 32K multiply-adds do. */
#define GK_PAR_MIN (1 << 15)
/* Element-wise ops split flat arrays into chunks of this many floats (a multiple of every
 * vector width, so SIMD tails occur only at the very end). */
#define GK_CHUNK 16384

/* ---- generic row kernels ---- */

void rms_norm_f32(float *y, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0; /* double: the sum of n squares stays exact to ~1e-16 whatever n is */
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const float r = (float)(1.0 / sqrt(ss / (double)n + eps));
    if (w)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * r * w[i];
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * r;
}

void layer_norm_f32(float *y, const float *x, const float *w, const float *b, int64_t n, float eps) {
    double sum = 0, ss = 0;
    for (int64_t i = 0; i < n; i++)
        sum += x[i];
    const double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++) /* two passes: no cancellation when |mean| >> std */
        ss += ((double)x[i] - mean) * ((double)x[i] - mean);
    const float r = (float)(1.0 / sqrt(ss / (double)n + eps)), m = (float)mean;
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - m) * r;
        if (w)
            v *= w[i];
        if (b)
            v += b[i];
        y[i] = v;
    }
}

void softmax_f32(float *y, const float *x, const float *mask, int64_t n, float scale) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i] * scale + (mask ? mask[i] : 0.0f);
        y[i] = v;
        m = v > m ? v : m;
    }
    if (m == -INFINITY) { /* every entry masked: zeros, not 0/0 */
        memset(y, 0, (size_t)n * sizeof(float));
        return;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        const float e = expf(y[i] - m);
        y[i] = e;
        sum += e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        y[i] *= inv;
}

void silu_f32(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

void gelu_f32(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        y[i] = v / (1.0f + expf(-(GK_GELU_A * v + GK_GELU_B * v * v * v)));
    }
}

void gelu_erf_f32(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void swiglu_f32(float *y, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void add_f32(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void mul_f32(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

void scale_f32(float *y, const float *x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * s;
}

void f32_to_f16(gk_fp16 *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = gk_fp32_to_fp16(x[i]);
}

/* q . k in float32 with 8 partial sums (the association of the 8-lane SIMD variant) */
static float dot_qk_f32(const float *q, const float *k, int64_t d) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += q[i + l] * k[i + l];
    for (; i < d; i++)
        acc[0] += q[i] * k[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float dot_qk_f16(const float *q, const gk_fp16 *k, int64_t d) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += q[i + l] * gk_fp16_to_fp32(k[i + l]);
    for (; i < d; i++)
        acc[0] += q[i] * gk_fp16_to_fp32(k[i]);
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* One pass over the visible slots with a running max M and sum S (online softmax): when a score
 * beats M, what was accumulated is rescaled by exp(M_old - M_new) in the same sweep that adds
 * the new value row. */
void attn_head_f32(float *out, const float *q, int32_t qp, int64_t kv0, const gk_attn_params *p) {
    const int64_t d = p->head_dim, stride = p->n_head_kv * d;
    float M = -INFINITY, S = 0;
    memset(out, 0, (size_t)d * sizeof(float));
    for (int64_t j = 0; j < p->n_kv; j++) {
        if (!gk_attn_visible(p, qp, j))
            continue;
        const int64_t off = kv0 + j * stride;
        float s = p->f16 ? dot_qk_f16(q, (const gk_fp16 *)p->k + off, d) : dot_qk_f32(q, (const float *)p->k + off, d);
        s *= p->scale;
        if (p->softcap > 0)
            s = p->softcap * tanhf(s / p->softcap);
        if (s == -INFINITY)
            continue;
        float ms = 1, vs = 1;
        if (s > M) {
            ms = expf(M - s);
            M = s;
        } else {
            vs = expf(s - M);
        }
        S = S * ms + vs;
        if (p->f16) {
            const gk_fp16 *v = (const gk_fp16 *)p->v + off;
            for (int64_t i = 0; i < d; i++)
                out[i] = out[i] * ms + vs * gk_fp16_to_fp32(v[i]);
        } else {
            const float *v = (const float *)p->v + off;
            for (int64_t i = 0; i < d; i++)
                out[i] = out[i] * ms + vs * v[i];
        }
    }
    const float inv = S > 0 ? 1.0f / S : 0.0f;
    for (int64_t i = 0; i < d; i++)
        out[i] *= inv;
}

/* ---- the dispatch table of the ops ---- */

#define GK_OP_FIELDS(sfx)                                                                               \
    .rms_norm = rms_norm_f32##sfx, .layer_norm = layer_norm_f32##sfx, .softmax = softmax_f32##sfx,      \
    .silu = silu_f32##sfx, .gelu = gelu_f32##sfx, .swiglu = swiglu_f32##sfx, .add = add_f32##sfx,       \
    .mul = mul_f32##sfx, .scale = scale_f32##sfx, .f32_to_f16 = f32_to_f16##sfx,                        \
    .attn_head = attn_head_f32##sfx

static const gk_op_kernels op_table[GK_SIMD_COUNT] = {
    [GK_SIMD_GENERIC] = {GK_OP_FIELDS()},
#if defined(__x86_64__)
    [GK_SIMD_AVX2] = {GK_OP_FIELDS(_avx2)},
    [GK_SIMD_AVX512] = {GK_OP_FIELDS(_avx512), .attn_group_64 = attn_group_64_f32_avx512},
#endif
};

/* The active level's kernel, or the generic one where that level has none. */
#define K(f) (op_table[gk_active_level].f ? op_table[gk_active_level].f : op_table[GK_SIMD_GENERIC].f)

static inline int gk_threads(int n_threads) { return n_threads > 0 ? n_threads : 1; }

/* ---- whole-tensor entry points ---- */

void gk_rms_norm(float *y, const float *x, const float *w, int64_t rows, int64_t n, float eps, int n_threads) {
    void (*f)(float *, const float *, const float *, int64_t, float) = K(rms_norm);
#pragma omp parallel for num_threads(gk_threads(n_threads)) if (rows > 1 && rows * n >= GK_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        f(y + r * n, x + r * n, w, n, eps);
}

void gk_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t n, float eps,
                   int n_threads) {
    void (*f)(float *, const float *, const float *, const float *, int64_t, float) = K(layer_norm);
#pragma omp parallel for num_threads(gk_threads(n_threads)) if (rows > 1 && rows * n >= GK_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        f(y + r * n, x + r * n, w, b, n, eps);
}

void gk_softmax(float *y, const float *x, const float *mask, int64_t mask_rows, int64_t rows, int64_t n, float scale,
                int n_threads) {
    void (*f)(float *, const float *, const float *, int64_t, float) = K(softmax);
#pragma omp parallel for num_threads(gk_threads(n_threads)) if (rows > 1 && rows * n >= GK_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        f(y + r * n, x + r * n, mask ? mask + (r % mask_rows) * n : NULL, n, scale);
}

/* ggml_rope_yarn_corr_dim: the dim at which the rotation over n_ctx_orig positions completes
 * n_turns turns. Computed in float as ggml does, so floor/ceil land on the same dims. */
static float yarn_corr_dim(int n_rot, int n_ctx_orig, float n_turns, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (n_turns * 2.0f * 3.14159265358979323846f)) / (2.0f * logf(base));
}

int gk_rope(float *x, const int32_t *pos, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
            const gk_rope_params *p, int n_threads) {
    const int64_t half = p->n_rot / 2;
    if (half <= 0 || n_tokens <= 0)
        return 0;
    /* YaRN: dims below corr[0] keep the unscaled angle (extrapolate), dims above corr[1] take the
     * interpolated one, a linear ramp in between; the magnitude grows by 0.1 ln(1/freq_scale). */
    float corr[2] = {0, 0};
    double mscale = p->attn_factor;
    if (p->ext_factor != 0.0f) {
        const float lo = floorf(yarn_corr_dim(p->n_rot, p->n_ctx_orig, p->beta_fast, p->freq_base));
        const float hi = ceilf(yarn_corr_dim(p->n_rot, p->n_ctx_orig, p->beta_slow, p->freq_base));
        corr[0] = lo > 0 ? lo : 0;
        corr[1] = hi < (float)(p->n_rot - 1) ? hi : (float)(p->n_rot - 1);
        mscale *= 1.0 + 0.1 * log(1.0 / p->freq_scale);
    }
    /* per-dim factors in double: theta = pos * freq reaches 1e5 rad at long contexts, where a
     * float angle would already be off by 1e-2 */
    double *freq = malloc((size_t)half * 3 * sizeof(double));
    if (!freq)
        return -1;
    double *ramp = freq + half;
    for (int64_t i = 0; i < half; i++) {
        freq[i] = pow((double)p->freq_base, -2.0 * (double)i / (double)p->n_rot);
        if (p->freq_factors)
            freq[i] /= p->freq_factors[i];
        /* the ramp in double too: at pos 1e5 a float ramp would move theta by 1e-2 */
        double yr = ((double)i - corr[0]) / (corr[1] - corr[0] > 0.001f ? (double)(corr[1] - corr[0]) : 0.001);
        yr = yr < 0 ? 0 : yr > 1 ? 1 : yr;
        ramp[i] = p->ext_factor != 0.0f ? (1.0 - yr) * p->ext_factor : 0.0; /* weight of the unscaled angle */
    }
    const int neox = p->mode == GK_ROPE_NEOX;
    int failed = 0;
#pragma omp parallel num_threads(gk_threads(n_threads)) if (n_tokens > 1 && n_tokens * n_heads * p->n_rot >= GK_PAR_MIN)
    {
        float *cs = malloc((size_t)half * 2 * sizeof(float)); /* cos, then sin, of this token */
        if (!cs) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t t = 0; t < n_tokens; t++) {
            if (!cs)
                continue;
            float *c = cs, *s = cs + half;
            for (int64_t i = 0; i < half; i++) {
                const double extrap = (double)pos[t] * freq[i], interp = extrap * p->freq_scale;
                const double theta = interp * (1.0 - ramp[i]) + extrap * ramp[i];
                c[i] = (float)(cos(theta) * mscale);
                s[i] = (float)(sin(theta) * mscale);
            }
            for (int64_t h = 0; h < n_heads; h++) {
                float *r = x + (t * n_heads + h) * head_dim;
                if (neox) {
                    for (int64_t i = 0; i < half; i++) {
                        const float x0 = r[i], x1 = r[i + half];
                        r[i] = x0 * c[i] - x1 * s[i];
                        r[i + half] = x0 * s[i] + x1 * c[i];
                    }
                } else {
                    for (int64_t i = 0; i < half; i++) {
                        const float x0 = r[2 * i], x1 = r[2 * i + 1];
                        r[2 * i] = x0 * c[i] - x1 * s[i];
                        r[2 * i + 1] = x0 * s[i] + x1 * c[i];
                    }
                }
            }
        }
        free(cs);
    }
    free(freq);
    return failed ? -1 : 0;
}

/* Token t's view of the cache. With kv ranges, one sequence's range of a shared cache becomes a
 * narrower view of its own (its K/V rows start lo slots further, and so do their positions, *shift
 * elements more), so no kernel variant needs to know; r holds it. Without, p itself. */
static inline const gk_attn_params *token_view(const gk_attn_params *p, int64_t t, gk_attn_params *r,
                                               int64_t *shift) {
    *shift = 0;
    if (!p->kv_range)
        return p;
    const int64_t lo = p->kv_range[2 * t], hi = p->kv_range[2 * t + 1];
    *r = *p;
    r->n_kv = hi > lo ? hi - lo : 0;
    r->kv_pos = p->kv_pos ? p->kv_pos + lo : NULL;
    r->kv_range = NULL;
    *shift = lo * p->n_head_kv * p->head_dim;
    return r;
}

void gk_attention(float *out, const float *q, const int32_t *q_pos, int64_t n_tokens, int64_t n_head,
                  const gk_attn_params *p, int n_threads) {
    void (*f)(float *, const float *, int32_t, int64_t, const gk_attn_params *) = K(attn_head);
    const int64_t d = p->head_dim, group = n_head / p->n_head_kv, pairs = n_tokens * n_head;
    void (*fg)(float *, const float *, int32_t, int64_t, const gk_attn_params *, int) =
        op_table[gk_active_level].attn_group_64;
    if (fg && d == 64 && group >= 2 && group <= GK_ATTN_MAX_GROUP) {
        /* the query heads sharing a kv head together: each cache row read once for all of them */
        const int64_t groups = n_tokens * p->n_head_kv;
#pragma omp parallel for num_threads(gk_threads(n_threads)) if (groups > 1 && pairs * p->n_kv * d >= GK_PAR_MIN) \
    schedule(dynamic, 1)
        for (int64_t i = 0; i < groups; i++) {
            const int64_t t = i / p->n_head_kv, hk = i % p->n_head_kv, first = t * n_head + hk * group;
            gk_attn_params r;
            int64_t shift;
            const gk_attn_params *view = token_view(p, t, &r, &shift);
            fg(out + first * d, q + first * d, q_pos ? q_pos[t] : 0, hk * d + shift, view, (int)group);
        }
        return;
    }
    /* dynamic: under a causal mask later tokens see more slots */
#pragma omp parallel for num_threads(gk_threads(n_threads)) if (pairs > 1 && pairs * p->n_kv * d >= GK_PAR_MIN) \
    schedule(dynamic, 1)
    for (int64_t i = 0; i < pairs; i++) {
        const int64_t t = i / n_head, h = i % n_head;
        gk_attn_params r;
        int64_t shift;
        const gk_attn_params *view = token_view(p, t, &r, &shift);
        f(out + i * d, q + i * d, q_pos ? q_pos[t] : 0, (h / group) * d + shift, view);
    }
}

void gk_attention_packed(float *out, const float *q, const float *k, const float *v, const int64_t *seq_start,
                         int64_t n_seq, int64_t n_head, int64_t head_dim, float scale, int n_threads) {
    void (*f)(float *, const float *, int32_t, int64_t, const gk_attn_params *) = K(attn_head);
    const int64_t d = head_dim, stride = n_head * d, pairs = seq_start[n_seq] * n_head;
    int64_t work = 0; /* multiply-adds: each token of a sequence of length L reads 2 L rows */
    for (int64_t s = 0; s < n_seq; s++)
        work += (seq_start[s + 1] - seq_start[s]) * (seq_start[s + 1] - seq_start[s]);
    work *= 2 * n_head * d;
    /* dynamic: sequences of different lengths make pairs of different cost */
#pragma omp parallel for num_threads(gk_threads(n_threads)) if (pairs > 1 && work >= GK_PAR_MIN) \
    schedule(dynamic, 8)
    for (int64_t i = 0; i < pairs; i++) {
        const int64_t t = i / n_head, h = i % n_head;
        int64_t lo = 0, hi = n_seq - 1; /* the last sequence starting at or before t holds it */
        while (lo < hi) {
            const int64_t mid = (lo + hi + 1) / 2;
            if (seq_start[mid] <= t)
                lo = mid;
            else
                hi = mid - 1;
        }
        const int64_t s0 = seq_start[lo];
        const gk_attn_params p = {.k = k + s0 * stride, .v = v + s0 * stride, .f16 = 0, .n_kv = seq_start[lo + 1] - s0,
                                  .n_head_kv = n_head, .head_dim = d, .kv_pos = NULL, .causal = 0, .window = 0,
                                  .scale = scale, .softcap = 0};
        f(out + i * d, q + i * d, 0, h * d, &p);
    }
}

/* Element-wise ops: chunks of one flat array over threads. */
#define GK_SPLIT_BEGIN(n, n_threads)                                                                   \
    const int64_t n_chunks = ((n) + GK_CHUNK - 1) / GK_CHUNK;                                          \
    _Pragma("omp parallel for num_threads(gk_threads(n_threads)) if (n_chunks > 1) schedule(static)") \
    for (int64_t c = 0; c < n_chunks; c++) {                                                           \
        const int64_t i0 = c * GK_CHUNK, len = (n) - i0 < GK_CHUNK ? (n) - i0 : GK_CHUNK;
#define GK_SPLIT_END }

void gk_silu(float *y, const float *x, int64_t n, int n_threads) {
    void (*f)(float *, const float *, int64_t) = K(silu);
    GK_SPLIT_BEGIN(n, n_threads)
    f(y + i0, x + i0, len);
    GK_SPLIT_END
}

void gk_gelu(float *y, const float *x, int64_t n, int n_threads) {
    void (*f)(float *, const float *, int64_t) = K(gelu);
    GK_SPLIT_BEGIN(n, n_threads)
    f(y + i0, x + i0, len);
    GK_SPLIT_END
}

void gk_gelu_erf(float *y, const float *x, int64_t n, int n_threads) {
    GK_SPLIT_BEGIN(n, n_threads)
    gelu_erf_f32(y + i0, x + i0, len);
    GK_SPLIT_END
}

void gk_swiglu(float *y, const float *gate, const float *up, int64_t n, int n_threads) {
    void (*f)(float *, const float *, const float *, int64_t) = K(swiglu);
    GK_SPLIT_BEGIN(n, n_threads)
    f(y + i0, gate + i0, up + i0, len);
    GK_SPLIT_END
}

void gk_scale(float *y, const float *x, float s, int64_t n, int n_threads) {
    void (*f)(float *, const float *, float, int64_t) = K(scale);
    GK_SPLIT_BEGIN(n, n_threads)
    f(y + i0, x + i0, s, len);
    GK_SPLIT_END
}

/* y = a (op) b, b broadcast over rows of a: with b_rows == rows it is one flat array. */
static void binary_rows(void (*f)(float *, const float *, const float *, int64_t), float *y, const float *a,
                        const float *b, int64_t rows, int64_t b_rows, int64_t n, int n_threads) {
    if (b_rows == rows) {
        const int64_t total = rows * n;
        GK_SPLIT_BEGIN(total, n_threads)
        f(y + i0, a + i0, b + i0, len);
        GK_SPLIT_END
        return;
    }
#pragma omp parallel for num_threads(gk_threads(n_threads)) if (rows > 1 && rows * n >= 4 * GK_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        f(y + r * n, a + r * n, b + (r % b_rows) * n, n);
}

void gk_add(float *y, const float *a, const float *b, int64_t rows, int64_t b_rows, int64_t n, int n_threads) {
    binary_rows(K(add), y, a, b, rows, b_rows, n, n_threads);
}

void gk_mul(float *y, const float *a, const float *b, int64_t rows, int64_t b_rows, int64_t n, int n_threads) {
    binary_rows(K(mul), y, a, b, rows, b_rows, n, n_threads);
}

void gk_copy_to_cache(void *cache, int f16, const float *src, const int32_t *slots, int64_t n_rows, int64_t row_len) {
    /* one thread: a batch's K or V rows are a few hundred KB, memory-bound */
    void (*f)(gk_fp16 *, const float *, int64_t) = K(f32_to_f16);
    for (int64_t t = 0; t < n_rows; t++) {
        if (f16)
            f((gk_fp16 *)cache + (int64_t)slots[t] * row_len, src + t * row_len, row_len);
        else
            memcpy((float *)cache + (int64_t)slots[t] * row_len, src + t * row_len, (size_t)row_len * sizeof(float));
    }
}
