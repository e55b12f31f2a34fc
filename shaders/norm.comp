#version 450
// rms_norm (default) and layer_norm (-DLAYER_NORM) over rows of dim floats: one workgroup per
// row; the grid is (rows per column, columns), so the row is y * gl_NumWorkGroups.x + x.
// Y may be X (in place): each invocation reads and then writes only its own elements, which is
// also why X and Y are not declared readonly / writeonly.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
#define GK_REDUCE_SIZE WG
#include "ops.glsl"

layout(set = 0, binding = 1) buffer X { float x[]; };
layout(set = 0, binding = 2) readonly buffer W { float w[]; };
#ifdef LAYER_NORM
layout(set = 0, binding = 3) readonly buffer B { float b[]; };
layout(set = 0, binding = 4) buffer Y { float y[]; };
#else
layout(set = 0, binding = 3) buffer Y { float y[]; };
#endif
layout(push_constant) uniform Push { uint dim; uint col_source; float eps; } pc;

void main() {
    if (gl_WorkGroupID.y >= n_cols(pc.col_source)) return;  // the whole workgroup: no barrier skipped
    const uint row = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * pc.dim;
    const uint lid = gl_LocalInvocationID.x;
#ifdef LAYER_NORM
    // The CPU sums in double; here the sum is taken about the row's first element, so that a
    // mean far larger than the spread loses no digits, and the variance in a second pass.
    const float x0 = x[row];
    float s = 0.0;
    for (uint i = lid; i < pc.dim; i += WG) s += x[row + i] - x0;
    const float mean = x0 + workgroup_sum(s) / float(pc.dim);
    float ss = 0.0;
    for (uint i = lid; i < pc.dim; i += WG) {
        float d = x[row + i] - mean;
        ss += d * d;
    }
    const float r = 1.0 / sqrt(workgroup_sum(ss) / float(pc.dim) + pc.eps);
    for (uint i = lid; i < pc.dim; i += WG) y[row + i] = (x[row + i] - mean) * r * w[i] + b[i];
#else
    float ss = 0.0;
    for (uint i = lid; i < pc.dim; i += WG) {
        float v = x[row + i];
        ss += v * v;
    }
    const float r = 1.0 / sqrt(workgroup_sum(ss) / float(pc.dim) + pc.eps);
    for (uint i = lid; i < pc.dim; i += WG) y[row + i] = x[row + i] * r * w[i];
#endif
}
