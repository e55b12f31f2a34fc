// What mul_mv_32.comp and k_mul_mv.comp share for their fused decoding forms (products.py), and
// the FLAGS forms' X in shared memory:
// -DNORM: the product of rms_norm(X) * gamma (binding 4); -DNORM -DGLU: W is the gate matrix with
// the up matrix stacked under it and Y = act(gate) * up, a workgroup's ROWS rows being ROWS / 2
// of each. -DNORM -DROPE: the q, k or v product of a decode step with what follows it: rows
// (2i, 2i + 1) of a head rotated by RoPE (normal mode, as rope.comp) to the token's position, then
// stored as floats into Y, or into the token's KV cache slot (binding 3 as the cache's uint words,
// kv_store.comp's layout); ROWS is even, so a pair is always one workgroup's. One dispatch in place
// of three, and a barrier fewer. Included after ROWS, COLS and the push constants p {n_out, n_in,
// ...} are declared.
#ifndef GK_MV_FORMS_GLSL
#define GK_MV_FORMS_GLSL

#include "ops.glsl"
#ifndef GK_PASSED
#define GK_PASSED  // coherent in the FLAGS forms (flags.glsl)
#endif

#ifdef FLAGS  // one column's X, read once after the wait (spec id 24: its vec4s, n_in / 4)
layout(constant_id = 24) const uint XS = 1;
// each block's 8 vec4s in an order turned by the block's index, so that the threads reading the
// same offset of neighbouring blocks meet different banks
shared vec4 xs[XS];
uint xs_slot(uint v) { return v ^ ((v >> 3u) & 7u); }
#endif

#if (defined(GLU) || defined(ROPE)) && !defined(NORM)
#error "the GLU and ROPE forms normalize too"
#endif
#if defined(GLU) && defined(ROPE)
#error "GLU or ROPE, not both"
#endif
#ifdef NORM
layout(constant_id = 3) const uint ACT = 0;  // 0 silu, 1 gelu
layout(constant_id = 4) const float EPS = 1e-5;
layout(set = 0, binding = 4) readonly buffer Gamma { vec4 gamma4[]; };
const uint SUMS = (ROWS + 1u) * COLS;  // the dot products, then each column's sum of squares
shared float totals[SUMS];              // every sum, for the outputs that need several
#else
const uint SUMS = ROWS * COLS;
#endif
#ifdef GLU
const uint OUT_ROWS = ROWS / 2u;
#else
const uint OUT_ROWS = ROWS;
#endif

// acc + dot(w, x) as four fmas in a fixed order.
float dot_acc(vec4 w, vec4 x, float acc) {
    return fma(w.w, x.w, fma(w.z, x.z, fma(w.y, x.y, fma(w.x, x.x, acc))));
}

#ifdef NORM
// Two vec4s of X (at ia and ib) as the NORM forms take them: their squares added to sum_sq (each
// element of X meets one thread once), then scaled by gamma.
void norm_x(inout vec4 xa, inout vec4 xb, uint ia, uint ib, inout float sum_sq) {
    sum_sq += dot(xa, xa) + dot(xb, xb);
    xa *= gamma4[ia];
    xb *= gamma4[ib];
}
#endif

// Rows of the matrix (the gate's and the up's with GLU).
uint weight_rows() {
#ifdef GLU
    return 2u * p.n_out;
#else
    return p.n_out;
#endif
}

// The matrix row of the workgroup's row r (< ROWS); rows past n_out read the last one, never stored.
uint weight_row(uint out0, uint r) {
#ifdef GLU
    return r < OUT_ROWS ? min(out0 + r, p.n_out - 1u) : p.n_out + min(out0 + r - OUT_ROWS, p.n_out - 1u);
#else
    return min(out0 + r, p.n_out - 1u);
#endif
}

#ifdef NORM
// One output of a normalizing form from its column's sums: the dot product with the gate (or
// only) row, with the up row (GLU), and the sum of squares of X.
float normed_output(float dot_row, float dot_up, float sum_sq) {
    float scale = inversesqrt(sum_sq / float(p.n_in) + EPS);
    float v = dot_row * scale;
#ifdef GLU
    v = (ACT == 0u ? gk_silu(v) : gk_gelu(v)) * (dot_up * scale);
#endif
    return v;
}
#endif

#ifdef ROPE
#include "rope.glsl"
layout(constant_id = 8) const uint HEAD_DIM = 128;
layout(constant_id = 9) const uint N_ROT = 128;    // dims [0, N_ROT) of each head rotate; 0: none (values)
layout(constant_id = 10) const uint TO_CACHE = 0;  // 1: into KV cache slot P.slots[col]; 0: Y [cols, n_out] floats
layout(constant_id = 11) const uint F16 = 0;       // the cache's words: pairs of halves (1) or float bits
layout(constant_id = 12) const float MSCALE = 1.0;
layout(set = 0, binding = 3) GK_PASSED buffer YWords { uint y_words[]; };
layout(set = 0, binding = 5) readonly buffer RopeFreqs { vec4 rope_freqs[]; };  // ops.rope_freqs

// Outputs row, row + 1 (row even) of column col: rotated where the head's dims are, then stored.
void store_rope_pair(uint col, uint row, float v0, float v1) {
    const uint d = row % HEAD_DIM;
    if (d < N_ROT) {
        const vec2 v = rotate(vec2(v0, v1), rope_turn_cs(param(PARAM_POS, col), rope_freqs[d / 2u]) * MSCALE);
        v0 = v.x;
        v1 = v.y;
    }
    if (TO_CACHE == 0u) {
        y_words[col * p.n_out + row] = floatBitsToUint(v0);
        y_words[col * p.n_out + row + 1u] = floatBitsToUint(v1);
        return;
    }
    const uint e = uint(param(PARAM_SLOT, col)) * p.n_out + row;  // n_out: the cache row's kv_dim
    if (F16 != 0u) {
        y_words[e / 2u] = pack_f16(v0, v1);
    } else {
        y_words[e] = floatBitsToUint(v0);
        y_words[e + 1u] = floatBitsToUint(v1);
    }
}
#endif

#endif
