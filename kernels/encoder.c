/* BERT encoder forward pass over packed sequences: see encoder.h. Read top to bottom: the scratch
 * layout, one matrix product that reuses quantized activations, one block, pooling, the whole pass. */
#include <math.h>
#include <string.h>

#include "encoder.h"
#include "quants.h"

/* ---- scratch ---- */

typedef struct {
    float *x;     /* [n, n_embd] the hidden states between sub-layers */
    float *xb;    /* [n, n_embd] a sub-layer's output before its residual and norm */
    float *q, *k, *v, *att; /* [n, n_embd] */
    float *hb;    /* [n, n_ff] the FFN's inner activations */
    int32_t *pos; /* [n] each token's position inside its sequence */
    void *act;    /* quantized activations of the widest input */
} scratch_layout;

static int64_t align64(int64_t bytes) { return (bytes + 63) & ~(int64_t)63; }

static size_t max_act_bytes(const gk_encoder *m, int64_t n) {
    size_t best = 0;
    for (int64_t l = 0; l < m->n_block; l++) {
        const gk_encoder_block *b = &m->blocks[l];
        const gk_matrix *all[] = {&b->wq, &b->wk, &b->wv, &b->wo, &b->ffn_up, &b->ffn_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            const size_t bytes = gk_matmul_scratch_size(all[i]->type, all[i]->n_in, n);
            if (bytes > best) best = bytes;
        }
    }
    return best;
}

static size_t layout(const gk_encoder *m, int64_t n, char *base, scratch_layout *s) {
    const int64_t e = m->n_embd;
    const int64_t sizes[] = {n * e, n * e, n * e, n * e, n * e, n * e, n * m->n_ff};
    float **slots[] = {&s->x, &s->xb, &s->q, &s->k, &s->v, &s->att, &s->hb};
    int64_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (base) *slots[i] = (float *)(base + off);
        off += align64(sizes[i] * (int64_t)sizeof(float));
    }
    if (base) s->pos = (int32_t *)(base + off);
    off += align64(n * (int64_t)sizeof(int32_t));
    if (base) s->act = base + off;
    return (size_t)(off + align64((int64_t)max_act_bytes(m, n)));
}

size_t gk_encoder_scratch_size(const gk_encoder *m, int64_t n_tokens) { return layout(m, n_tokens, NULL, NULL); }

/* ---- matrix products ---- */

/* a product (kernels/decoder.c's, reusing quantized activations), then the bias */
static int matmul(const gk_matrix *w, const float *bias, const float *x, int64_t n, float *y, gk_act_cache *a,
                  int same_input, int nt) {
    if (gk_matrix_product(w, x, n, y, a, same_input, nt)) return -1;
    if (bias) gk_add(y, y, bias, n, 1, w->n_out, nt);
    return 0;
}

/* ---- one block ---- */

static int block(const gk_encoder *m, const gk_encoder_block *b, const int64_t *seq_start, int64_t n_seq, int64_t n,
                 scratch_layout *s, int nt) {
    const int64_t e = m->n_embd;
    gk_act_cache a = {.buf = s->act, .src = NULL, .type = -1};
    if (matmul(&b->wq, b->bq, s->x, n, s->q, &a, 0, nt) || matmul(&b->wk, b->bk, s->x, n, s->k, &a, 1, nt) ||
        matmul(&b->wv, b->bv, s->x, n, s->v, &a, 1, nt))
        return -1;
    gk_attention_packed(s->att, s->q, s->k, s->v, seq_start, n_seq, m->n_head, e / m->n_head, m->attn_scale, nt);
    if (matmul(&b->wo, b->bo, s->att, n, s->xb, &a, 0, nt)) return -1;
    gk_add(s->xb, s->xb, s->x, n, n, e, nt);
    gk_layer_norm(s->x, s->xb, b->attn_norm_w, b->attn_norm_b, n, e, m->norm_eps, nt);
    if (matmul(&b->ffn_up, b->ffn_up_b, s->x, n, s->hb, &a, 0, nt)) return -1;
    if (m->gelu_erf)
        gk_gelu_erf(s->hb, s->hb, n * m->n_ff, nt);
    else
        gk_gelu(s->hb, s->hb, n * m->n_ff, nt);
    if (matmul(&b->ffn_down, b->ffn_down_b, s->hb, n, s->xb, &a, 0, nt)) return -1;
    gk_add(s->xb, s->xb, s->x, n, n, e, nt);
    gk_layer_norm(s->x, s->xb, b->out_norm_w, b->out_norm_b, n, e, m->norm_eps, nt);
    return 0;
}

/* ---- pooling ---- */

static void pool(const gk_encoder *m, const float *x, const int64_t *seq_start, int64_t n_seq, int pooling,
                 int normalize, float *out) {
    const int64_t e = m->n_embd;
    const int64_t rows = pooling == GK_POOL_NONE ? seq_start[n_seq] : n_seq;
    for (int64_t r = 0; r < rows; r++) {
        float *o = out + r * e;
        if (pooling == GK_POOL_NONE) {
            memcpy(o, x + r * e, (size_t)e * sizeof(float));
        } else {
            const int64_t t0 = seq_start[r], t1 = seq_start[r + 1];
            memset(o, 0, (size_t)e * sizeof(float));
            if (t1 > t0 && pooling == GK_POOL_MEAN) {
                for (int64_t t = t0; t < t1; t++)
                    for (int64_t i = 0; i < e; i++) o[i] += x[t * e + i];
                const float inv = 1.0f / (float)(t1 - t0);
                for (int64_t i = 0; i < e; i++) o[i] *= inv;
            } else if (t1 > t0) {
                memcpy(o, x + (pooling == GK_POOL_CLS ? t0 : t1 - 1) * e, (size_t)e * sizeof(float));
            }
        }
        if (normalize) {
            double ss = 0;
            for (int64_t i = 0; i < e; i++) ss += (double)o[i] * o[i];
            const float scale = (float)(1.0 / fmax(sqrt(ss), 1e-12)); /* GPT4All's floor for a zero vector */
            for (int64_t i = 0; i < e; i++) o[i] *= scale;
        }
    }
}

/* ---- the whole pass ---- */

int gk_encoder_forward(const gk_encoder *m, const int32_t *tokens, const int64_t *seq_start, int64_t n_seq,
                       int pooling, int normalize, float *out, void *scratch, int n_threads) {
    if (n_seq < 1 || seq_start[0] != 0 || pooling < GK_POOL_NONE || pooling > GK_POOL_LAST) return -1;
    const int64_t n = seq_start[n_seq], e = m->n_embd;
    if (n < 1) return -1;
    scratch_layout s;
    layout(m, n, scratch, &s);
    for (int64_t q = 0; q < n_seq; q++) {
        const int64_t len = seq_start[q + 1] - seq_start[q];
        if (len < 0 || len > m->n_pos) return -1;
        for (int64_t t = 0; t < len; t++) s.pos[seq_start[q] + t] = (int32_t)t;
    }
    if (gk_get_rows(m->tok_embd.type, m->tok_embd.data, m->tok_embd.n_out, e, tokens, n, s.x, n_threads) ||
        gk_get_rows(m->pos_embd.type, m->pos_embd.data, m->pos_embd.n_out, e, s.pos, n, s.xb, n_threads))
        return -1;
    gk_add(s.x, s.x, s.xb, n, n, e, n_threads);
    if (m->type_embd) gk_add(s.x, s.x, m->type_embd, n, 1, e, n_threads);
    gk_layer_norm(s.x, s.x, m->embd_norm_w, m->embd_norm_b, n, e, m->norm_eps, n_threads);
    for (int64_t l = 0; l < m->n_block; l++)
        if (block(m, &m->blocks[l], seq_start, n_seq, n, &s, n_threads)) return -1;
    pool(m, s.x, seq_start, n_seq, pooling, normalize, out);
    return 0;
}
