// What every op shader of the decoder shares: the per-batch parameter buffer at binding 0.
//
// The forward pass is recorded once into a Kompute sequence and replayed for every batch, so what
// changes between batches (how many tokens, how much of the KV cache to attend over, the token
// ids, positions, cache slots, each token's visible slot range, which rows want logits) is not in
// push constants but in this small host-visible buffer, written before each submit. Dispatch grids
// are sized for max_batch tokens; invocations past n_tokens (or n_logits) return at once.
//
// Layout (uint32 words): n_tokens, n_kv, n_logits, max_batch, then six int arrays of max_batch
// entries each, in the order of the PARAM_* indices below (gpt4all_core/backend/vulkan/context.py
// writes the same layout).
#ifndef GK_COMMON_GLSL
#define GK_COMMON_GLSL

layout(set = 0, binding = 0) readonly buffer Params {
    uint n_tokens;
    uint n_kv;
    uint n_logits;
    uint max_batch;
    int values[];
} P;

#define PARAM_TOKEN 0u
#define PARAM_POS 1u
#define PARAM_SLOT 2u
#define PARAM_KV_LO 3u
#define PARAM_KV_HI 4u
#define PARAM_LOGIT_ROW 5u

int param(uint array, uint t) { return P.values[array * P.max_batch + t]; }

// Product and element-wise shaders take a push constant `col_source` saying how many rows
// (columns of the product) there are: the batch's tokens, or the rows that want logits.
#define COLS_TOKENS 0u
#define COLS_LOGITS 1u
uint n_cols(uint col_source) { return col_source == COLS_LOGITS ? P.n_logits : P.n_tokens; }

// How many of the width columns from col0 on exist (0: none). A pass always has its column 0 (at
// least one token; a pass recording logits, at least one row), so a one-column workgroup there
// reads nothing of P: its weight loads do not wait for that read.
uint cols_from(uint col_source, uint col0, uint width) {
    if (width == 1u && col0 == 0u) {
        return 1u;
    }
    uint n = n_cols(col_source);
    return col0 < n ? min(width, n - col0) : 0u;
}

#endif
