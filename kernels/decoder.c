/* Decoder forward pass over a KV cache: see decoder.h. Read top to bottom: the scratch layout,
 * one matrix product that reuses quantized activations, one block, the whole pass, the cache
 * shift that GPT4All's context erase needs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decoder.h"
#include "quants.h"

/* ---- scratch ---- */

typedef struct {
    float *x;     /* [n, n_embd] the residual stream */
    float *xb;    /* [n, max(n_embd, q_dim)] normed input of a sub-layer, then its output */
    float *q;     /* [n, n_head * head_dim] */
    float *k, *v; /* [n, n_head_kv * head_dim] */
    float *att;   /* [n, n_head * head_dim] attention output */
    float *hb, *hb2; /* [n, n_ff] FFN gate and up */
    void *act;    /* quantized activations of the widest input */
} scratch_layout;

static int64_t align64(int64_t bytes) { return (bytes + 63) & ~(int64_t)63; }

/* The activation type w's products take (rows16 products: Q8_0S whatever the weight type), or -1 */
static int act_type(const gk_matrix *w) {
    const gk_type_traits *t = gk_type_traits_get(w->type);
    if (!t || !t->vec_dot) return -1;
    return w->layout == GK_LAYOUT_ROWS16 ? GK_TYPE_Q8_0S : (int)t->vec_dot_type;
}

static size_t act_bytes(const gk_matrix *w, int64_t n) {
    const int a = act_type(w);
    return a < 0 ? 0 : (size_t)(gk_row_size(gk_type_traits_get(a), w->n_in) * n);
}

static size_t max_act_bytes(const gk_decoder *m, int64_t n) {
    size_t best = act_bytes(&m->output, n);
    for (int64_t l = 0; l < m->n_block; l++) {
        const gk_decoder_block *b = &m->blocks[l];
        const gk_matrix *all[] = {&b->wq, &b->wk, &b->wv, &b->wo, &b->ffn_gate, &b->ffn_up, &b->ffn_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (act_bytes(all[i], n) > best) best = act_bytes(all[i], n);
    }
    return best;
}

static size_t layout(const gk_decoder *m, int64_t n, char *base, scratch_layout *s) {
    const int64_t q_dim = m->n_head * m->head_dim, kv_dim = m->n_head_kv * m->head_dim;
    const int64_t wide = q_dim > m->n_embd ? q_dim : m->n_embd;
    const int64_t sizes[] = {n * m->n_embd, n * wide, n * q_dim, n * kv_dim, n * kv_dim, n * q_dim,
                             n * m->n_ff, n * m->n_ff};
    float **slots[] = {&s->x, &s->xb, &s->q, &s->k, &s->v, &s->att, &s->hb, &s->hb2};
    int64_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (base) *slots[i] = (float *)(base + off);
        off += align64(sizes[i] * (int64_t)sizeof(float));
    }
    if (base) s->act = base + off;
    return (size_t)(off + align64((int64_t)max_act_bytes(m, n)));
}

size_t gk_decoder_scratch_size(const gk_decoder *m, int64_t n_max) { return layout(m, n_max, NULL, NULL); }

/* ---- matrix products ---- */

int gk_matrix_product(const gk_matrix *w, const float *x, int64_t n, float *y, gk_act_cache *a, int same_input,
                      int nt) {
    const int type = act_type(w);
    if (type < 0) return -1;
    const void *act = x;
    if (type != GK_TYPE_F32) {
        if (!same_input || a->src != x || a->type != type) {
            if (gk_quantize_rows(type, x, w->n_in, n, a->buf, nt)) return -1;
            a->src = x;
            a->type = type;
        }
        act = a->buf;
    }
    if (w->layout == GK_LAYOUT_ROWS16) return gk_matmul_rows16(w->type, w->data, w->n_out, w->n_in, act, n, y, nt);
    return gk_matmul_act(w->type, w->data, w->n_out, w->n_in, act, n, y, nt) ? -1 : 0;
}

static void add_bias(float *y, const float *bias, int64_t n, int64_t dim, int nt) {
    if (bias) gk_add(y, y, bias, n, 1, dim, nt);
}

/* ---- one block ---- */

static int attention_block(const gk_decoder *m, const gk_decoder_block *b, const gk_kv_cache *c, int64_t l,
                           const int32_t *pos, const int32_t *slots, const int32_t *kv_range, int64_t n,
                           int64_t n_kv, scratch_layout *s, gk_act_cache *a, int nt) {
    const int64_t hd = m->head_dim, q_dim = m->n_head * hd, kv_dim = m->n_head_kv * hd;
    gk_rms_norm(s->xb, s->x, b->attn_norm, n, m->n_embd, m->norm_eps, nt);
    if (gk_matrix_product(&b->wq, s->xb, n, s->q, a, 0, nt) || gk_matrix_product(&b->wk, s->xb, n, s->k, a, 1, nt) ||
        gk_matrix_product(&b->wv, s->xb, n, s->v, a, 1, nt))
        return -1;
    add_bias(s->q, b->bq, n, q_dim, nt);
    add_bias(s->k, b->bk, n, kv_dim, nt);
    add_bias(s->v, b->bv, n, kv_dim, nt);
    if (b->attn_q_norm) gk_rms_norm(s->q, s->q, b->attn_q_norm, n * m->n_head, hd, m->norm_eps, nt);
    if (b->attn_k_norm) gk_rms_norm(s->k, s->k, b->attn_k_norm, n * m->n_head_kv, hd, m->norm_eps, nt);
    if (gk_rope(s->q, pos, n, m->n_head, hd, &b->rope, nt) || gk_rope(s->k, pos, n, m->n_head_kv, hd, &b->rope, nt))
        return -2;
    gk_copy_to_cache(c->k[l], c->f16, s->k, slots, n, kv_dim);
    gk_copy_to_cache(c->v[l], c->f16, s->v, slots, n, kv_dim);
    const gk_attn_params p = {
        .k = c->k[l], .v = c->v[l], .f16 = c->f16, .n_kv = n_kv, .n_head_kv = m->n_head_kv, .head_dim = hd,
        .kv_pos = c->pos, .causal = 1, .window = b->window, .scale = m->attn_scale, .softcap = m->attn_softcap,
        .kv_range = kv_range,
    };
    gk_attention(s->att, s->q, pos, n, m->n_head, &p, nt);
    if (gk_matrix_product(&b->wo, s->att, n, s->xb, a, 0, nt)) return -1;
    add_bias(s->xb, b->bo, n, m->n_embd, nt);
    if (b->attn_post_norm) gk_rms_norm(s->xb, s->xb, b->attn_post_norm, n, m->n_embd, m->norm_eps, nt);
    gk_add(s->x, s->x, s->xb, n, n, m->n_embd, nt);
    return 0;
}

static int ffn_block(const gk_decoder *m, const gk_decoder_block *b, int64_t n, scratch_layout *s, gk_act_cache *a,
                     int nt) {
    gk_rms_norm(s->xb, s->x, b->ffn_norm, n, m->n_embd, m->norm_eps, nt);
    if (gk_matrix_product(&b->ffn_gate, s->xb, n, s->hb, a, 0, nt) ||
        gk_matrix_product(&b->ffn_up, s->xb, n, s->hb2, a, 1, nt))
        return -1;
    if (m->act == GK_ACT_GELU) {
        gk_gelu(s->hb, s->hb, n * m->n_ff, nt);
        gk_mul(s->hb, s->hb, s->hb2, n, n, m->n_ff, nt);
    } else {
        gk_swiglu(s->hb, s->hb, s->hb2, n * m->n_ff, nt);
    }
    if (gk_matrix_product(&b->ffn_down, s->hb, n, s->xb, a, 0, nt)) return -1;
    if (b->ffn_post_norm) gk_rms_norm(s->xb, s->xb, b->ffn_post_norm, n, m->n_embd, m->norm_eps, nt);
    gk_add(s->x, s->x, s->xb, n, n, m->n_embd, nt);
    return 0;
}

/* ---- the whole pass ---- */

int gk_decoder_forward(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens, const int32_t *pos,
                       const int32_t *slots, int64_t n, int64_t n_kv, float *logits, int64_t n_logits, void *scratch,
                       int n_threads) {
    return gk_decoder_forward_batch(m, c, tokens, pos, slots, NULL, n, n_kv, logits, NULL, n_logits, scratch,
                                    n_threads);
}

/* Embeddings, then every block: the residual stream ends in s->x. */
static int run_blocks(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens, const int32_t *pos,
                      const int32_t *slots, const int32_t *kv_range, int64_t n, int64_t n_kv, scratch_layout *s,
                      gk_act_cache *a, int n_threads) {
    if (gk_get_rows(m->tok_embd.type, m->tok_embd.data, m->tok_embd.n_out, m->n_embd, tokens, n, s->x, n_threads))
        return -1;
    if (m->embd_scale != 1.0f) gk_scale(s->x, s->x, m->embd_scale, n * m->n_embd, n_threads);
    for (int64_t t = 0; t < n; t++) c->pos[slots[t]] = pos[t];
    for (int64_t l = 0; l < m->n_block; l++) {
        const gk_decoder_block *b = &m->blocks[l];
        int rc = attention_block(m, b, c, l, pos, slots, kv_range, n, n_kv, s, a, n_threads);
        if (!rc) rc = ffn_block(m, b, n, s, a, n_threads);
        if (rc) return rc;
    }
    return 0;
}

int gk_decoder_forward_hidden(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens, const int32_t *pos,
                              const int32_t *slots, const int32_t *kv_range, int64_t n, int64_t n_kv, float *hidden,
                              void *scratch, int n_threads) {
    if (n <= 0 || n_kv > c->n_ctx) return -1;
    scratch_layout s;
    layout(m, n, scratch, &s);
    gk_act_cache a = {.buf = s.act, .src = NULL, .type = -1};
    int rc = run_blocks(m, c, tokens, pos, slots, kv_range, n, n_kv, &s, &a, n_threads);
    if (!rc) memcpy(hidden, s.x, (size_t)(n * m->n_embd) * sizeof(float));
    return rc;
}

int gk_decoder_forward_batch(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens, const int32_t *pos,
                             const int32_t *slots, const int32_t *kv_range, int64_t n, int64_t n_kv, float *logits,
                             const int32_t *logit_rows, int64_t n_logits, void *scratch, int n_threads) {
    if (n <= 0 || n_logits < 0 || n_logits > n || n_kv > c->n_ctx) return -1;
    scratch_layout s;
    layout(m, n, scratch, &s);
    gk_act_cache a = {.buf = s.act, .src = NULL, .type = -1};
    int rc = run_blocks(m, c, tokens, pos, slots, kv_range, n, n_kv, &s, &a, n_threads);
    if (rc) return rc;
    if (!n_logits) return 0;
    const float *last = s.x + (n - n_logits) * m->n_embd;
    if (logit_rows) { /* the asked-for rows gathered first: each sequence's last token, wherever it sits */
        for (int64_t i = 0; i < n_logits; i++) {
            if (logit_rows[i] < 0 || logit_rows[i] >= n) return -1;
            memcpy(s.xb + i * m->n_embd, s.x + (int64_t)logit_rows[i] * m->n_embd, (size_t)m->n_embd * sizeof(float));
        }
        last = s.xb;
    }
    gk_rms_norm(s.xb, last, m->output_norm, n_logits, m->n_embd, m->norm_eps, n_threads);
    if (gk_matrix_product(&m->output, s.xb, n_logits, logits, &a, 0, n_threads)) return -1;
    if (m->final_softcap > 0) {
        const float cap = m->final_softcap;
        for (int64_t i = 0; i < n_logits * m->n_vocab; i++) logits[i] = cap * tanhf(logits[i] / cap);
    }
    return 0;
}

/* ---- context shift ---- */

int gk_kv_cache_shift(const gk_decoder *m, const gk_kv_cache *c, int64_t dst, int64_t src, int64_t count,
                      int32_t delta, int n_threads) {
    if (count <= 0) return 0;
    if (dst < 0 || src < 0 || dst + count > c->n_ctx || src + count > c->n_ctx) return -1;
    const int64_t row = m->n_head_kv * m->head_dim, esize = c->f16 ? 2 : 4;
    float *buf = c->f16 ? malloc((size_t)(count * row) * sizeof(float)) : NULL;
    int32_t *deltas = malloc((size_t)count * sizeof(int32_t));
    if ((c->f16 && !buf) || !deltas) {
        free(buf);
        free(deltas);
        return -2;
    }
    for (int64_t i = 0; i < count; i++) deltas[i] = delta;
    int rc = 0;
    for (int64_t l = 0; l < m->n_block && !rc; l++) {
        char *k = c->k[l], *v = c->v[l];
        memmove(k + dst * row * esize, k + src * row * esize, (size_t)(count * row * esize));
        memmove(v + dst * row * esize, v + src * row * esize, (size_t)(count * row * esize));
        if (!delta) continue;
        if (c->f16) { /* rotate in float, as llama.cpp's K-shift does, then round back */
            gk_fp16 *kh = (gk_fp16 *)k + dst * row;
            for (int64_t i = 0; i < count * row; i++) buf[i] = gk_fp16_to_fp32(kh[i]);
            rc = gk_rope(buf, deltas, count, m->n_head_kv, m->head_dim, &m->blocks[l].rope, n_threads);
            for (int64_t i = 0; i < count * row; i++) kh[i] = gk_fp32_to_fp16(buf[i]);
        } else {
            rc = gk_rope((float *)k + dst * row, deltas, count, m->n_head_kv, m->head_dim, &m->blocks[l].rope,
                         n_threads);
        }
    }
    memmove(c->pos + dst, c->pos + src, (size_t)count * sizeof(int32_t));
    for (int64_t i = dst; i < dst + count; i++) c->pos[i] += delta;
    for (int64_t i = dst + count; i < src + count; i++) c->pos[i] = -1; /* vacated (when moving down) */
    free(buf);
    free(deltas);
    return rc ? -2 : 0;
}
