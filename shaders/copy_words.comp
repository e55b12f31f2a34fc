#version 450
// dst[dst_offset + i] = src[src_offset + i] for i < n_words. ORDER 0: any order, over the whole
// grid. When SRC and DST may be one buffer with overlapping ranges (the KV cache moved within
// itself on a context erase), memmove: one workgroup copies chunk by chunk, every chunk read
// before any of it is written, in ascending order (ORDER 1, moving down) or descending (ORDER 2,
// moving up), so no chunk reads what an earlier one wrote.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint ORDER = 0;
const uint PER = 8;  // words each invocation holds per chunk in the ordered copy

layout(set = 0, binding = 1) buffer Src { uint src[]; };
layout(set = 0, binding = 2) buffer Dst { uint dst[]; };
layout(push_constant) uniform Push { uint src_offset; uint dst_offset; uint n_words; } pc;

void main() {
    const uint n = pc.n_words;
    if (ORDER == 0) {
        for (uint i = gl_GlobalInvocationID.x; i < n; i += gl_NumWorkGroups.x * WG)
            dst[pc.dst_offset + i] = src[pc.src_offset + i];
        return;
    }
    const uint chunk = WG * PER, n_chunks = (n + chunk - 1) / chunk;
    for (uint c = 0; c < n_chunks; c++) {
        const uint base = (ORDER == 1 ? c : n_chunks - 1 - c) * chunk + gl_LocalInvocationID.x;
        uint v[PER];
        for (uint k = 0; k < PER; k++) {
            const uint i = base + k * WG;
            v[k] = i < n ? src[pc.src_offset + i] : 0u;
        }
        barrier();  // the whole chunk read before any of it is overwritten
        for (uint k = 0; k < PER; k++) {
            const uint i = base + k * WG;
            if (i < n) dst[pc.dst_offset + i] = v[k];
        }
        memoryBarrierBuffer();
        barrier();
    }
}
