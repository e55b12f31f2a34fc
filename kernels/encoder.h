/* The forward pass of a BERT encoder (llama.cpp's `bert` graph) over a batch of whole texts, in C:
 * one call from Python per batch, pooling included.
 *
 * The texts are packed one after another without padding (sequence s is tokens
 * [seq_start[s], seq_start[s + 1])): the matrix products run over every token of the batch at
 * once, attention stays inside each sequence, and pooling reads only a sequence's own tokens, so
 * no padding can enter an embedding.
 *
 * The graph: token + position + token-type-0 embeddings, layer norm; per block Q/K/V (+ bias),
 * bidirectional attention, output projection, residual, layer norm; FFN up (+ bias), GELU,
 * down (+ bias), residual, layer norm. Then mean, CLS or last-token pooling and, if asked, L2
 * normalization of each pooled row. Weights are used where they lie (the GGUF mmap). */
#ifndef GK_ENCODER_H
#define GK_ENCODER_H

#include "decoder.h" /* gk_matrix */

typedef struct {
    gk_matrix wq, wk, wv, wo, ffn_up, ffn_down;
    const float *bq, *bk, *bv, *bo, *ffn_up_b, *ffn_down_b; /* biases or NULL */
    const float *attn_norm_w, *attn_norm_b;                 /* attn_output_norm: after attention + residual */
    const float *out_norm_w, *out_norm_b;                   /* layer_output_norm: after the FFN + residual */
} gk_encoder_block;

enum { GK_POOL_NONE = 0, GK_POOL_MEAN = 1, GK_POOL_CLS = 2, GK_POOL_LAST = 3 }; /* llama.cpp's numbers */

typedef struct {
    int64_t n_block, n_embd, n_head, n_ff, n_vocab, n_pos;
    float norm_eps, attn_scale;
    int gelu_erf;                 /* 1: exact GELU (erf); 0: the tanh form llama.cpp uses */
    gk_matrix tok_embd, pos_embd; /* [n_vocab, n_embd], [n_pos, n_embd], any type get_rows reads */
    const float *type_embd;       /* token type 0's row (llama.cpp gives every token type 0), or NULL */
    const float *embd_norm_w, *embd_norm_b;
    const gk_encoder_block *blocks;
} gk_encoder;

/* Bytes of scratch a forward pass over n_tokens tokens needs. */
size_t gk_encoder_scratch_size(const gk_encoder *m, int64_t n_tokens);

/* Runs the n_seq sequences of tokens (seq_start[0] = 0 <= ... <= seq_start[n_seq] = n_tokens, each
 * sequence at most n_pos long; positions count from 0 in each) and writes out: [n_seq, n_embd]
 * pooled as `pooling` says, or [n_tokens, n_embd] hidden states for GK_POOL_NONE; each row scaled to
 * unit L2 norm when normalize is set. An empty sequence pools to zeros.
 * Returns 0, or -1 for a bad argument or a weight type the kernels cannot multiply by. */
int gk_encoder_forward(const gk_encoder *m, const int32_t *tokens, const int64_t *seq_start, int64_t n_seq,
                       int pooling, int normalize, float *out, void *scratch, int n_threads);

#endif
