/* gpt4all-core kernels: the non-quantized ops the models need (norms, RoPE, softmax, attention over
 * a KV cache, activations, element-wise ops, KV cache writes), with ggml's semantics.
 *
 * Two layers. Row kernels (rms_norm_f32, ..., and their _avx2/_avx512 variants) do one row on one
 * thread; ops.c keeps the one table that picks them by gk_active_level. The gk_* entry points
 * take whole tensors, validate nothing (the Cython wrappers do) and spread rows over OpenMP
 * threads; the SIMD files hold no OpenMP code, so every wide instruction stays inside a function
 * named *_avx2 / *_avx512 (tests/backend/test_cpu_kernels.py checks the object code for that).
 *
 * Layouts are C-contiguous float32 unless said otherwise; "rows" is the product of the leading
 * dimensions, n the last one. Outputs may alias inputs for every op but attention. */
#ifndef GK_OPS_H
#define GK_OPS_H

#include "fp16.h"
#include "gk.h"

/* ---- whole-tensor entry points (ops.c) ---- */

/* y = x / sqrt(mean(x^2) + eps) * w, per row; w (length n) may be NULL. */
void gk_rms_norm(float *y, const float *x, const float *w, int64_t rows, int64_t n, float eps, int n_threads);
/* y = (x - mean) / sqrt(var + eps) * w + b, per row; w and b (length n) may be NULL. */
void gk_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t n, float eps,
                   int n_threads);
/* y = softmax(x * scale + mask) per row; mask may be NULL, else mask_rows rows of n, row r of x
 * using mask row r % mask_rows (broadcast over leading dims). A row whose every entry is -inf
 * comes out all zeros. */
void gk_softmax(float *y, const float *x, const float *mask, int64_t mask_rows, int64_t rows, int64_t n, float scale,
                int n_threads);

/* RoPE as ggml_rope_ext: mode GK_ROPE_NORMAL rotates pairs (2i, 2i+1), GK_ROPE_NEOX pairs
 * (i, i + n_rot/2), for i < n_rot/2; theta_i = pos * freq_scale * freq_base^(-2i/n_rot)
 * / freq_factors[i], blended with the unscaled angle by YaRN when ext_factor != 0, and cos/sin
 * multiplied by attn_factor (times YaRN's magnitude correction when ext_factor != 0). */
enum { GK_ROPE_NORMAL = 0, GK_ROPE_NEOX = 2 }; /* ggml's mode values */
typedef struct {
    int n_rot;                 /* even, <= head_dim; dims past it are left as they are */
    int mode;                  /* GK_ROPE_NORMAL or GK_ROPE_NEOX */
    float freq_base, freq_scale;
    const float *freq_factors; /* n_rot/2 divisors of theta, or NULL (llama3's rope_freqs) */
    float ext_factor, attn_factor, beta_fast, beta_slow;
    int n_ctx_orig;
} gk_rope_params;
/* In place on x[n_tokens, n_heads, head_dim]; token t sits at position pos[t]. Returns 0, or -1
 * when out of memory (x then partly rotated). */
int gk_rope(float *x, const int32_t *pos, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
             const gk_rope_params *p, int n_threads);

/* Scaled dot-product attention of q[n_tokens, n_head, head_dim] over a KV cache
 * k, v[n_kv, n_head_kv, head_dim] (both F32 or both F16), into out[n_tokens, n_head, head_dim].
 * Query head h reads kv head h / (n_head / n_head_kv). Kv slot j is visible to token t when
 * kv_pos[j] >= 0 (a negative position marks an empty slot), and, if causal,
 * kv_pos[j] <= q_pos[t], and, if window > 0, kv_pos[j] > q_pos[t] - window. kv_pos NULL: every
 * slot visible (q_pos then unused). Score s = q.k * scale, then softcap * tanh(s / softcap) when
 * softcap > 0. A token that sees no slot gets zeros. kv_range narrows each token's slots (below). */
typedef struct {
    const void *k, *v;      /* float or gk_fp16 */
    int f16;                /* 1: k and v hold F16 bit patterns */
    int64_t n_kv, n_head_kv, head_dim;
    const int32_t *kv_pos;  /* [n_kv] or NULL */
    int causal;
    int32_t window;         /* 0: none */
    float scale, softcap;   /* softcap 0: none */
    /* [n_tokens][2] or NULL. When set, token t sees only slots [kv_range[2t], kv_range[2t + 1]) (the
     * part of a cache that holds its own sequence, when several share one cache and decode in one
     * batch); the rules above then apply inside that range. NULL: [0, n_kv) for every token. */
    const int32_t *kv_range;
} gk_attn_params;
void gk_attention(float *out, const float *q, const int32_t *q_pos, int64_t n_tokens, int64_t n_head,
                  const gk_attn_params *p, int n_threads);

/* Bidirectional attention inside packed sequences (an encoder's batch without padding): q, k, v
 * and out are [n_tokens, n_head, head_dim] float32, sequence s holds tokens
 * [seq_start[s], seq_start[s + 1]) and each token sees every token of its own sequence and none of
 * the others. n_tokens = seq_start[n_seq]; empty sequences are allowed. */
void gk_attention_packed(float *out, const float *q, const float *k, const float *v, const int64_t *seq_start,
                         int64_t n_seq, int64_t n_head, int64_t head_dim, float scale, int n_threads);

/* Activations and element-wise ops over n floats (threads split long arrays). */
void gk_silu(float *y, const float *x, int64_t n, int n_threads);
void gk_gelu(float *y, const float *x, int64_t n, int n_threads);     /* tanh approximation, as ggml_gelu */
void gk_gelu_erf(float *y, const float *x, int64_t n, int n_threads); /* exact: x/2 (1 + erf(x/sqrt 2)) */
void gk_swiglu(float *y, const float *gate, const float *up, int64_t n, int n_threads); /* silu(gate) * up */
void gk_scale(float *y, const float *x, float s, int64_t n, int n_threads);
/* y = a + b and y = a * b over rows of n; b_rows rows of b, row r of a using b row r % b_rows
 * (b_rows 1: one row broadcast to all). */
void gk_add(float *y, const float *a, const float *b, int64_t rows, int64_t b_rows, int64_t n, int n_threads);
void gk_mul(float *y, const float *a, const float *b, int64_t rows, int64_t b_rows, int64_t n, int n_threads);

/* cache[slots[t]] = src[t] for t < n_rows, each row row_len floats; cache F32 or F16 (f16 = 1). */
void gk_copy_to_cache(void *cache, int f16, const float *src, const int32_t *slots, int64_t n_rows, int64_t row_len);

/* ---- row kernels: generic, then SIMD variants (NULL in the table where none helps) ---- */
typedef struct {
    void (*rms_norm)(float *y, const float *x, const float *w, int64_t n, float eps);
    void (*layer_norm)(float *y, const float *x, const float *w, const float *b, int64_t n, float eps);
    void (*softmax)(float *y, const float *x, const float *mask, int64_t n, float scale);
    void (*silu)(float *y, const float *x, int64_t n);
    void (*gelu)(float *y, const float *x, int64_t n);
    void (*swiglu)(float *y, const float *gate, const float *up, int64_t n);
    void (*add)(float *y, const float *a, const float *b, int64_t n);
    void (*mul)(float *y, const float *a, const float *b, int64_t n);
    void (*scale)(float *y, const float *x, float s, int64_t n);
    void (*f32_to_f16)(gk_fp16 *y, const float *x, int64_t n);
    /* one (token, head) of attention: q and out are head_dim floats; kv0 the cache offset of this
     * kv head's slot 0, in elements */
    void (*attn_head)(float *out, const float *q, int32_t q_pos, int64_t kv0, const gk_attn_params *p);
    /* the G (2..GK_ATTN_MAX_GROUP) query heads of one kv head at once, 64-wide heads: the same bits
     * as attn_head on each; NULL where a level has none */
    void (*attn_group_64)(float *out, const float *q, int32_t q_pos, int64_t kv0, const gk_attn_params *p, int G);
} gk_op_kernels;

#define GK_ATTN_MAX_GROUP 4
void attn_group_64_f32_avx512(float *out, const float *q, int32_t q_pos, int64_t kv0, const gk_attn_params *p, int G);

#define GK_OP_KERNELS(sfx)                                                                             \
    void rms_norm_f32##sfx(float *y, const float *x, const float *w, int64_t n, float eps);            \
    void layer_norm_f32##sfx(float *y, const float *x, const float *w, const float *b, int64_t n,       \
                             float eps);                                                              \
    void softmax_f32##sfx(float *y, const float *x, const float *mask, int64_t n, float scale);        \
    void silu_f32##sfx(float *y, const float *x, int64_t n);                                          \
    void gelu_f32##sfx(float *y, const float *x, int64_t n);                                          \
    void swiglu_f32##sfx(float *y, const float *gate, const float *up, int64_t n);                    \
    void add_f32##sfx(float *y, const float *a, const float *b, int64_t n);                           \
    void mul_f32##sfx(float *y, const float *a, const float *b, int64_t n);                           \
    void scale_f32##sfx(float *y, const float *x, float s, int64_t n);                                \
    void f32_to_f16##sfx(gk_fp16 *y, const float *x, int64_t n);                                      \
    void attn_head_f32##sfx(float *out, const float *q, int32_t q_pos, int64_t kv0, const gk_attn_params *p);
GK_OP_KERNELS()
GK_OP_KERNELS(_avx2)
GK_OP_KERNELS(_avx512)
void gelu_erf_f32(float *y, const float *x, int64_t n);

/* Whether kv slot j is visible to a query at position qp (shared by every attn_head variant;
 * always inlined, so no wide code leaks out of the SIMD files under another name). */
static inline __attribute__((always_inline)) int gk_attn_visible(const gk_attn_params *p, int32_t qp, int64_t j) {
    if (!p->kv_pos)
        return 1;
    const int32_t kp = p->kv_pos[j];
    return kp >= 0 && (!p->causal || kp <= qp) && (p->window <= 0 || (int64_t)kp > (int64_t)qp - p->window);
}

/* GELU tanh approximation through the identity (1 + tanh u) / 2 = 1 / (1 + e^(-2u)): one exp,
 * no cancellation near zero. 2u = GK_GELU_A x + GK_GELU_B x^3. */
#define GK_GELU_A 1.5957691216057308f                 /* 2 sqrt(2/pi) */
#define GK_GELU_B (1.5957691216057308f * 0.044715f)

#endif
