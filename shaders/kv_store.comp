#version 450
// Row t of SRC (kv_dim floats) goes to slot P.slots[t] of the KV cache (uint words): float bits,
// or (F16) pairs of halves rounded as the CPU rounds, element e in word e / 2, low half first.
// The grid is (chunks of the row's words, columns).
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint F16 = 0;
#include "ops.glsl"

layout(set = 0, binding = 1) readonly buffer Src { float src[]; };
layout(set = 0, binding = 2) buffer Cache { uint cache[]; };
layout(push_constant) uniform Push { uint kv_dim; } pc;

void main() {
    const uint words = F16 != 0 ? pc.kv_dim / 2 : pc.kv_dim, stride = gl_NumWorkGroups.x * WG;
    for (uint t = gl_WorkGroupID.y; t < P.n_tokens; t += gl_NumWorkGroups.y) {
        const uint s = t * pc.kv_dim, d = uint(param(PARAM_SLOT, t)) * words;
        for (uint i = gl_GlobalInvocationID.x; i < words; i += stride)
            cache[d + i] = F16 != 0 ? pack_f16(src[s + 2 * i], src[s + 2 * i + 1]) : floatBitsToUint(src[s + i]);
    }
}
