// Picks the K-quant type a shader is compiled for (glslc -DTYPE_Q4_K, ...).
#include "kquants/k_common.glsl"
#if defined(TYPE_Q2_K)
#include "kquants/q2_k.glsl"
#elif defined(TYPE_Q3_K)
#include "kquants/q3_k.glsl"
#elif defined(TYPE_Q4_K)
#include "kquants/q4_k.glsl"
#elif defined(TYPE_Q5_K)
#include "kquants/q5_k.glsl"
#elif defined(TYPE_Q6_K)
#include "kquants/q6_k.glsl"
#else
#error "compile with -DTYPE_Q2_K, -DTYPE_Q3_K, -DTYPE_Q4_K, -DTYPE_Q5_K or -DTYPE_Q6_K"
#endif

#ifndef KQ_LOAD_PAIR
// Groups g (sub-block s < 4 of its block) and g + 4 of a row (k_mul_mv.comp's PAIRS); Q4_K and Q5_K
// define their own, which unpack the block's scales once.
void load_pair(uint row, uint g, out Group a, out Group b) {
    a = load_group(row, g);
    b = load_group(row, g + 4u);
}
#endif

// Quarter k (< 4) of a group as values: the products that scale after the dot skip this.
void dequant_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    vec2 ma = part_affine(G, k / (4u / KQ_PARTS));
    raw_quarter(G, k, lo, hi);
    lo = fma(lo, ma.xxxx, ma.yyyy);
    hi = fma(hi, ma.xxxx, ma.yyyy);
}
