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

// Quarter k (< 4) of a group as values: the products that scale after the dot skip this.
void dequant_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    vec2 ma = part_affine(G, k / (4u / KQ_PARTS));
    raw_quarter(G, k, lo, hi);
    lo = fma(lo, ma.xxxx, ma.yyyy);
    hi = fma(hi, ma.xxxx, ma.yyyy);
}
