/* The forward pass of a decoder-only transformer (llama family: Llama, Mistral, Qwen2, SmolLM2;
 * with the switches below, Gemma 3), over a batch of tokens and a KV cache, in C: one call
 * from Python per batch, so nothing but the kernels runs per layer.
 *
 * Weights are used where they lie (the GGUF mmap); nothing is dequantized ahead. The graph is
 * llama.cpp's build_llama: per block RMS norm, Q/K/V (+ bias), RoPE, attention over the cache,
 * output projection, residual; RMS norm, gated FFN, residual; then the final norm and the
 * output projection for the tokens whose logits are asked for. Gemma 3 (llama.cpp's gemma3
 * graph) adds: embeddings times embd_scale, the Q and K head norms between the projection and
 * RoPE, the post-attention and post-FFN norms before each residual add, GELU gating, per-block
 * RoPE and window (its local blocks), and the final soft-cap; tests/models/test_gemma3.py holds
 * each to llama.cpp and to a float64 reference. */
#ifndef GK_DECODER_H
#define GK_DECODER_H

#include "ops.h"

/* How a matrix's rows lie in data: as in the GGUF, or repacked 16 at a time (gk_repack_rows16). */
enum { GK_LAYOUT_ROWS = 0, GK_LAYOUT_ROWS16 = 1 };

/* A weight matrix: n_out rows of n_in elements of a ggml type, row-major as in GGUF unless layout
 * says otherwise. */
typedef struct {
    const void *data;
    int type;
    int64_t n_out, n_in;
    int layout; /* GK_LAYOUT_* */
} gk_matrix;

/* The activations last quantized into a scratch buffer. Q, K and V (and gate and up) read the same
 * input: the later ones pass same_input and reuse it when their vec_dot_type matches (a pointer
 * alone cannot say so: inputs are rewritten in place between sub-layers). */
typedef struct {
    void *buf;
    const float *src;
    int type; /* the vec_dot_type src was quantized to */
} gk_act_cache;

/* y[n, n_out] = x[n, n_in] times w's rows, with x quantized through the cache. Returns 0 or -1. */
int gk_matrix_product(const gk_matrix *w, const float *x, int64_t n, float *y, gk_act_cache *a, int same_input,
                      int n_threads);

typedef struct {
    const float *attn_norm;                /* [n_embd] */
    const float *attn_q_norm, *attn_k_norm; /* [head_dim] or NULL (Gemma 3's QK norm) */
    const float *attn_post_norm;           /* [n_embd] or NULL (Gemma's norm after attention) */
    gk_matrix wq, wk, wv, wo;
    const float *bq, *bk, *bv, *bo;        /* biases or NULL (Qwen2 has Q/K/V biases) */
    const float *ffn_norm, *ffn_post_norm; /* ffn_post_norm NULL unless Gemma */
    gk_matrix ffn_gate, ffn_up, ffn_down;
    gk_rope_params rope;                   /* per block: Gemma 3's local blocks have their own base */
    int32_t window;                        /* sliding-window width, 0: full attention */
} gk_decoder_block;

enum { GK_ACT_SILU = 0, GK_ACT_GELU = 1 }; /* the gated FFN's activation: silu(gate) * up or gelu */

typedef struct {
    int64_t n_block, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab;
    float norm_eps;
    float attn_scale;    /* q.k multiplier, usually 1/sqrt(head_dim) */
    float embd_scale;    /* embeddings are multiplied by it (Gemma: sqrt(n_embd)); 1 otherwise */
    float attn_softcap;  /* 0: none */
    float final_softcap; /* logits = c * tanh(logits / c); 0: none */
    int act;             /* GK_ACT_* */
    gk_matrix tok_embd, output;
    const float *output_norm;
    const gk_decoder_block *blocks;
} gk_decoder;

/* The KV cache: per block K and V of [n_ctx, n_head_kv, head_dim], F32 or F16, and the position
 * held by each slot (negative: empty). */
typedef struct {
    int64_t n_ctx;
    int f16;
    void *const *k;
    void *const *v;
    int32_t *pos;
} gk_kv_cache;

/* Bytes of scratch a forward pass over up to n_max tokens needs. */
size_t gk_decoder_scratch_size(const gk_decoder *m, int64_t n_max);

/* Runs tokens[0..n) at positions pos[], writing their K and V into cache slots slots[] (and
 * c->pos[slots[t]] = pos[t]) and attending over cache slots [0, n_kv) (n_kv must cover every
 * slot in use, these included). Writes logits [n_logits, n_vocab] of the last n_logits tokens.
 * Returns 0, -1 for a bad argument or unsupported weight type, -2 out of memory.
 *
 * Several sequences in one batch (continuous batching): kv_range [n][2], when not NULL, gives
 * each token the slots [lo, hi) that hold its own sequence, so it attends to nothing else; and
 * logit_rows [n_logits], when not NULL, says which tokens' logits to write (in that order)
 * instead of the last n_logits. Both NULL: the single-sequence pass, unchanged. A token's numbers
 * do not depend on the batch it shares: every product is batch-invariant (kernels/matmul.c). */
int gk_decoder_forward(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens, const int32_t *pos,
                       const int32_t *slots, int64_t n, int64_t n_kv, float *logits, int64_t n_logits, void *scratch,
                       int n_threads);
int gk_decoder_forward_batch(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens, const int32_t *pos,
                             const int32_t *slots, const int32_t *kv_range, int64_t n, int64_t n_kv, float *logits,
                             const int32_t *logit_rows, int64_t n_logits, void *scratch, int n_threads);

/* The same pass without the head: writes the residual stream after the last block, hidden[n, n_embd]
 * (the first blocks of a model split between the CPU and a GPU). */
int gk_decoder_forward_hidden(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens, const int32_t *pos,
                              const int32_t *slots, const int32_t *kv_range, int64_t n, int64_t n_kv, float *hidden,
                              void *scratch, int n_threads);

/* Moves the cached K/V of slots [src, src + count) to [dst, dst + count) and shifts their positions
 * by delta, re-rotating the keys (RoPE composes: R(p + delta) = R(delta) R(p)). Context erase. */
int gk_kv_cache_shift(const gk_decoder *m, const gk_kv_cache *c, int64_t dst, int64_t src, int64_t count,
                      int32_t delta, int n_threads);

#endif
