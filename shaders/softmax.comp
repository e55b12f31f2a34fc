#version 450
// Y = softmax(X * scale) per row of n floats, as the CPU's softmax_f32 (a row whose every entry
// is -inf comes out zeros). One workgroup per row; row = y * gl_NumWorkGroups.x + x.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
#define GK_REDUCE_SIZE WG
#include "ops.glsl"

layout(set = 0, binding = 1) readonly buffer X { float x[]; };
layout(set = 0, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n; uint rows; float scale; } pc;

void main() {
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= pc.rows) return;  // the whole workgroup
    const uint base = row * pc.n, lid = gl_LocalInvocationID.x;
    float m = GK_NEG_INF;
    for (uint i = lid; i < pc.n; i += WG) m = max(m, x[base + i] * pc.scale);
    m = workgroup_max(m);
    if (m == GK_NEG_INF) {
        for (uint i = lid; i < pc.n; i += WG) y[base + i] = 0.0;
        return;
    }
    float s = 0.0;
    for (uint i = lid; i < pc.n; i += WG) s += exp(x[base + i] * pc.scale - m);
    const float inv = 1.0 / workgroup_sum(s);
    for (uint i = lid; i < pc.n; i += WG) y[base + i] = exp(x[base + i] * pc.scale - m) * inv;
}
