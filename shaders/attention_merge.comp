#version 450
// The second half of attention_split: for each (head, token), the N_SPLIT partial results that
// attention.comp -DSPLIT_K left in SCRATCH merged into one softmax (attention_merge.glsl). The
// grid is (n_head, columns).
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint HEAD_DIM = 128;
layout(constant_id = 2) const uint N_SPLIT = 1;
#include "ops.glsl"

layout(set = 0, binding = 1) readonly buffer Scratch { float scratch[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float o[]; };
#include "attention_merge.glsl"

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, n_head = gl_NumWorkGroups.x;
    if (t >= P.n_tokens) return;
    merge_splits((t * n_head + h) * N_SPLIT * (HEAD_DIM + 2), (t * n_head + h) * HEAD_DIM, N_SPLIT,
                 gl_LocalInvocationID.x, WG);
}
