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
