#version 450
// The second half of attention_split: for each (head, token), the N_SPLIT partial results that
// attention.comp -DSPLIT_K left in SCRATCH (per split: HEAD_DIM unnormalized output floats, then
// the split's max m and sum s of exp(score - m)) merged into one softmax: with M the largest m,
// out = sum_z o_z e^(m_z - M) / sum_z s_z e^(m_z - M); zeros where no split saw a slot.
// The grid is (n_head, columns).
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint HEAD_DIM = 128;
layout(constant_id = 2) const uint N_SPLIT = 1;
#include "ops.glsl"

layout(set = 0, binding = 1) readonly buffer Scratch { float scratch[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float o[]; };

const uint PART = HEAD_DIM + 2;

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, n_head = gl_NumWorkGroups.x;
    if (t >= P.n_tokens) return;
    const uint base = (t * n_head + h) * N_SPLIT * PART, dst = (t * n_head + h) * HEAD_DIM;
    float big_m = GK_NEG_INF;
    for (uint z = 0; z < N_SPLIT; z++) big_m = max(big_m, scratch[base + z * PART + HEAD_DIM]);
    float s = 0.0;
    for (uint z = 0; z < N_SPLIT; z++) {
        const float mz = scratch[base + z * PART + HEAD_DIM];
        if (mz != GK_NEG_INF) s += scratch[base + z * PART + HEAD_DIM + 1] * exp(mz - big_m);
    }
    const float inv = s > 0.0 ? 1.0 / s : 0.0;
    for (uint d = gl_LocalInvocationID.x; d < HEAD_DIM; d += WG) {
        float acc = 0.0;
        for (uint z = 0; z < N_SPLIT; z++) {
            const float mz = scratch[base + z * PART + HEAD_DIM];
            if (mz != GK_NEG_INF) acc += scratch[base + z * PART + d] * exp(mz - big_m);
        }
        o[dst + d] = acc * inv;
    }
}
