#version 450
// Y[t] = row P.tokens[t] of a K-quant table W, dequantized, times scale (token embeddings).
// One invocation per 32-element group; grid x over the groups of a row, y over max_tokens: tokens
// from P.n_tokens on are left alone. A token id outside [0, n_rows) gives a row of zeros.
#include "common.glsl"
#include "kquants/k_type.glsl"

layout(local_size_x_id = 0) in;

layout(set = 0, binding = 2) writeonly buffer Y { vec4 y4[]; };
layout(push_constant) uniform Push { uint n_in, n_rows; float scale; } p;

void main() {
    uint t = gl_WorkGroupID.y, g = gl_GlobalInvocationID.x;
    kq_set_layout(p.n_rows, p.n_in);
    uint n_groups = kq_row_blocks * GROUPS_PER_BLOCK;
    if (t >= P.n_tokens || g >= n_groups) {
        return;
    }
    int token = param(PARAM_TOKEN, t);
    bool valid = token >= 0 && uint(token) < p.n_rows;
    Group G = load_group(valid ? uint(token) : 0u, g);
    float s = valid ? p.scale : 0.0;
    uint o = t * (p.n_in / 4u) + g * 8u;
    for (uint k = 0; k < 4u; k++) {
        vec4 lo, hi;
        dequant_quarter(G, k, lo, hi);
        y4[o + 2u * k] = lo * s;
        y4[o + 2u * k + 1u] = hi * s;
    }
}
