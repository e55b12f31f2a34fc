#version 450
// Y[i] = X[P.logit_rows[i]] for the rows that want logits (i < P.n_logits), n floats each.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

layout(set = 0, binding = 1) readonly buffer X { float x[]; };
layout(set = 0, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n; } pc;

void main() {
    const uint stride = gl_NumWorkGroups.x * WG;
    for (uint r = gl_WorkGroupID.y; r < P.n_logits; r += gl_NumWorkGroups.y) {
        const uint src = uint(param(PARAM_LOGIT_ROW, r)) * pc.n;
        for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) y[r * pc.n + i] = x[src + i];
    }
}
