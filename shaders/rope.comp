#version 450
// RoPE as the CPU's gk_rope, one workgroup per (row, head): the grid is (heads, rows).
// Default: X [cols, n_head, HEAD_DIM] floats in place, token t at position P.pos[t].
// -DROPE_STORE: X (binding 1) is read, not written; each token's rotated keys go to KV cache
// slot P.slots[t] (binding 3, uint words as kv_store writes them), the RoPE and the KV store of
// a decode step in one dispatch. HEAD_DIM must be even with F16 (a head is whole words).
// -DROPE_CACHE: the keys of KV cache slots [first_slot, first_slot + count) (uint words, F32 bits
// or pairs of halves) rotated by delta positions; F16 keys go through shared memory as floats,
// since the two elements of a pair may sit in different words, and are rounded back as the CPU
// rounds. Pairs: (2i, 2i + 1) normal, (i, i + N_ROT/2) NEOX, for i < N_ROT/2; dims past N_ROT stay.
//
// FREQS (binding 2, from ops.rope_freqs) holds per pair i the angle per position in turns
// (rope.glsl says how; the fused Q, K products of mv_forms.glsl read the same table).
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint HEAD_DIM = 128;
layout(constant_id = 2) const uint N_ROT = 128;
layout(constant_id = 3) const uint NEOX = 0;
layout(constant_id = 4) const uint F16 = 0;  // ROPE_CACHE and ROPE_STORE only
#include "ops.glsl"

const uint HALF = N_ROT / 2;

#ifdef ROPE_CACHE
layout(set = 0, binding = 1) buffer Cache { uint cache[]; };
layout(push_constant) uniform Push { float mscale; uint first_slot; uint count; int delta; } pc;
#elif defined(ROPE_STORE)
layout(set = 0, binding = 1) readonly buffer X { float x[]; };
layout(set = 0, binding = 3) writeonly buffer Cache { uint cache[]; };
layout(push_constant) uniform Push { float mscale; } pc;
#else
layout(set = 0, binding = 1) buffer X { float x[]; };
layout(push_constant) uniform Push { float mscale; } pc;
#endif
layout(set = 0, binding = 2) readonly buffer Freqs { vec4 freqs[]; };

#include "rope.glsl"

// (cos, sin) of pair i's angle at position pos, times mscale
vec2 rope_cs(int pos, uint i) { return rope_turn_cs(pos, freqs[i]) * pc.mscale; }

uvec2 pair_dims(uint i) { return NEOX != 0 ? uvec2(i, i + HALF) : uvec2(2 * i, 2 * i + 1); }

#if defined(ROPE_CACHE) || defined(ROPE_STORE)
// One head's row as floats, shared by the workgroup: the pairs of a row may sit in different words.
shared float row_f[HEAD_DIM];

// Rotates row_f's pairs to position pos, between barriers (the row is loaded before, stored after).
void rotate_row_f(int pos, uint lid) {
    barrier();
    for (uint i = lid; i < HALF; i += WG) {
        const uvec2 d = pair_dims(i);
        const vec2 v = rotate(vec2(row_f[d.x], row_f[d.y]), rope_cs(pos, i));
        row_f[d.x] = v.x;
        row_f[d.y] = v.y;
    }
    barrier();
}
#endif

void main() {
    const uint lid = gl_LocalInvocationID.x, head = gl_WorkGroupID.x, n_head = gl_NumWorkGroups.x;
#ifdef ROPE_CACHE
    for (uint r = gl_WorkGroupID.y; r < pc.count; r += gl_NumWorkGroups.y) {
        const uint base = ((pc.first_slot + r) * n_head + head) * HEAD_DIM;  // in elements
        if (F16 != 0) {
            for (uint w = lid; w < HALF; w += WG) {  // the N_ROT rotated halves are words [0, HALF)
                const vec2 v = unpackHalf2x16(cache[base / 2 + w]);
                row_f[2 * w] = v.x;
                row_f[2 * w + 1] = v.y;
            }
            rotate_row_f(pc.delta, lid);
            for (uint w = lid; w < HALF; w += WG) cache[base / 2 + w] = pack_f16(row_f[2 * w], row_f[2 * w + 1]);
            barrier();  // row_f free for the next slot
        } else {
            for (uint i = lid; i < HALF; i += WG) {
                const uvec2 d = base + pair_dims(i);
                const vec2 v = rotate(vec2(uintBitsToFloat(cache[d.x]), uintBitsToFloat(cache[d.y])), rope_cs(pc.delta, i));
                cache[d.x] = floatBitsToUint(v.x);
                cache[d.y] = floatBitsToUint(v.y);
            }
        }
    }
#elif defined(ROPE_STORE)
    const uint t = gl_WorkGroupID.y;
    if (t >= P.n_tokens) return;  // the whole workgroup: no barrier skipped
    const uint base = (t * n_head + head) * HEAD_DIM;
    const int pos = param(PARAM_POS, t);
    for (uint e = lid; e < HEAD_DIM; e += WG) row_f[e] = x[base + e];
    rotate_row_f(pos, lid);
    const uint slot = uint(param(PARAM_SLOT, t));
    if (F16 != 0) {
        const uint words = HEAD_DIM / 2, dst = (slot * n_head + head) * words;
        for (uint w = lid; w < words; w += WG) cache[dst + w] = pack_f16(row_f[2 * w], row_f[2 * w + 1]);
    } else {
        const uint dst = (slot * n_head + head) * HEAD_DIM;
        for (uint e = lid; e < HEAD_DIM; e += WG) cache[dst + e] = floatBitsToUint(row_f[e]);
    }
#else
    const uint t = gl_WorkGroupID.y;
    if (t >= P.n_tokens) return;
    const uint base = (t * n_head + head) * HEAD_DIM;
    const int pos = param(PARAM_POS, t);
    for (uint i = lid; i < HALF; i += WG) {
        const uvec2 d = base + pair_dims(i);
        const vec2 v = rotate(vec2(x[d.x], x[d.y]), rope_cs(pos, i));
        x[d.x] = v.x;
        x[d.y] = v.y;
    }
#endif
}
