#version 450
// Reads n4 uvec4s of a buffer from offset4 on and keeps nothing: recorded beside a decode step's
// product, with no barrier between them, it pulls the next product's weights into L2 while the
// GPU waits on that product's drain. One-token products are too small to keep enough reads in
// flight on their own (gpu/ablate_decode.py: without barriers the step's products ran 1.4x as
// fast), so the next one then reads from L2. The loads feed a value that is written to the sink
// only when it equals a constant, which the compiler cannot rule out and which no data is meant
// to hit; nothing reads the sink.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
const uint PER = 4;  // uvec4s an invocation keeps in flight

layout(set = 0, binding = 1) readonly buffer Src { uvec4 src[]; };
layout(set = 0, binding = 2) writeonly buffer Sink { uint sink[]; };
layout(push_constant) uniform Push { uint offset4; uint n4; } pc;

void main() {
    const uint base = gl_WorkGroupID.x * WG * PER + gl_LocalInvocationID.x;
    uvec4 acc = uvec4(0u);
    for (uint k = 0u; k < PER; k++) {
        const uint i = base + k * WG;
        if (i < pc.n4) {
            acc ^= src[pc.offset4 + i];
        }
    }
    const uint folded = acc.x ^ acc.y ^ acc.z ^ acc.w;
    if (folded == 0x9E3779B9u) {
        sink[gl_LocalInvocationID.x] = folded;
    }
}
