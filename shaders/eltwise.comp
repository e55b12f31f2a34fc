#version 450
// The element-wise ops over [cols, n] floats, in place on X; one target per op (-D OP_*):
// add (X += B), mul (X *= B), add_bias (each row += BIAS), swiglu (X = silu(X) * B),
// gelu_mul (X = gelu(X) * B, the CPU's tanh form), their _split forms (below), scale (X *= s),
// softcap (X = s tanh(X / s)).
// The grid is (chunks of n, columns); both loops stride by the grid, so any size is covered.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
#include "ops.glsl"

// the split forms read gate and up from one [cols, 2n] B (gate first in each column), as a product by
// the gate and up matrices stacked writes them, and write X [cols, n]
#if defined(OP_SWIGLU_SPLIT) || defined(OP_GELU_MUL_SPLIT)
#define SPLIT 1
#endif
#if defined(OP_ADD) || defined(OP_MUL) || defined(OP_ADD_BIAS) || defined(OP_SWIGLU) || defined(OP_GELU_MUL) || defined(SPLIT)
#define HAS_B 1
#endif

layout(set = 0, binding = 1) buffer X { float x[]; };
#ifdef HAS_B
layout(set = 0, binding = 2) readonly buffer B { float b[]; };
#endif
layout(push_constant) uniform Push { uint n; uint col_source; float s; } pc;

float apply(float v, uint i, uint k) {
#if defined(OP_ADD)
    return v + b[k];
#elif defined(OP_MUL)
    return v * b[k];
#elif defined(OP_ADD_BIAS)
    return v + b[i];
#elif defined(OP_SWIGLU)
    return gk_silu(v) * b[k];
#elif defined(OP_GELU_MUL)
    return gk_gelu(v) * b[k];
#elif defined(OP_SWIGLU_SPLIT)
    return gk_silu(b[k + (k / pc.n) * pc.n]) * b[k + (k / pc.n + 1u) * pc.n];
#elif defined(OP_GELU_MUL_SPLIT)
    return gk_gelu(b[k + (k / pc.n) * pc.n]) * b[k + (k / pc.n + 1u) * pc.n];
#elif defined(OP_SCALE)
    return v * pc.s;
#elif defined(OP_SOFTCAP)
    return pc.s * gk_tanh(v / pc.s);
#else
#error "eltwise.comp needs one OP_* define"
#endif
}

void main() {
    const uint cols = n_cols(pc.col_source), stride = gl_NumWorkGroups.x * WG;
    for (uint r = gl_WorkGroupID.y; r < cols; r += gl_NumWorkGroups.y)
        for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
            const uint k = r * pc.n + i;
            x[k] = apply(x[k], i, k);
        }
}
