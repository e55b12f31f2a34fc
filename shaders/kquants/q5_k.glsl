// Q5_K on the device (176 bytes per super-block, as in the GGUF): streams
//   quants  uvec4 [blocks * 8]: low 4 bits, one per 32-element sub-block (k_common.glsl order)
//   high    uint [blocks * 8]: the fifth bits of a sub-block (pack_high_bits order)
//   header  uvec4 [blocks]: d | dmin << 16, then the 12 bytes of packed 6-bit scales and mins
// value = d * scale * q - dmin * min.
const uint KQ_PARTS = 1u;
struct Group { uvec4 q; uint h; float mul, add; };

Group load_group(uint row, uint g) {
    uint block = row * kq_row_blocks + g / GROUPS_PER_BLOCK;
    uint gi = row * kq_row_blocks * 8u + g;
    uvec4 head = w4[kq_blocks * 10u + block];
    uvec2 sm = scale_min_k4(g % GROUPS_PER_BLOCK, head.yzw);
    vec2 d_dmin = unpackHalf2x16(head.x);
    float scale = d_dmin.x * small_uint_float(sm.x), offset = -d_dmin.y * small_uint_float(sm.y);
    vec2 c = group_constants(scale, offset);
    return Group(w4[gi], w1[kq_blocks * 32u + gi], c.x, c.y);
}

vec2 part_affine(Group G, uint part) { return vec2(G.mul, G.add); }

void raw_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    uint word = G.q[k];
    lo = raw_values((word & 0x0F0F0F0Fu) | high_bits_lo(G.h, k, 4u));
    hi = raw_values(((word >> 4) & 0x0F0F0F0Fu) | high_bits_hi(G.h, k, 4u));
}
