#version 450
// The element-wise ops over [cols, n] floats, in place on X; one target per op (-D OP_*):
// add (X += B), mul (X *= B), add_bias (each row += BIAS), swiglu (X = silu(X) * B),
// gelu_mul (X = gelu(X) * B, the CPU's tanh form), scale (X *= s), softcap (X = s tanh(X / s)).
// The grid is (chunks of n, columns); both loops stride by the grid, so any size is covered.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
#include "ops.glsl"

#if defined(OP_ADD) || defined(OP_MUL) || defined(OP_ADD_BIAS) || defined(OP_SWIGLU) || defined(OP_GELU_MUL)
#define HAS_B 1
#endif

layout(set = 0, binding = 1) buffer X { float x[]; };
#ifdef HAS_B
layout(set = 0, binding = 2) readonly buffer B { float b[]; };
#endif
layout(push_constant) uniform Push { uint n; uint col_source; float s; } pc;

// GELU as gk_gelu: x / (1 + e^-(A x + B x^3)), the tanh approximation through one exp
const float GELU_A = 1.5957691216057308;
const float GELU_B = 1.5957691216057308 * 0.044715;

float apply(float v, uint i, uint k) {
#if defined(OP_ADD)
    return v + b[k];
#elif defined(OP_MUL)
    return v * b[k];
#elif defined(OP_ADD_BIAS)
    return v + b[i];
#elif defined(OP_SWIGLU)
    return v / (1.0 + exp(-v)) * b[k];
#elif defined(OP_GELU_MUL)
    return v / (1.0 + exp(-(GELU_A * v + GELU_B * v * v * v))) * b[k];
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
