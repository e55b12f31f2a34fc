// Q4_K on the device (144 bytes per super-block, as in the GGUF): streams
//   quants  uvec4 [blocks * 8]: one per 32-element sub-block, 4-bit quants (k_common.glsl order)
//   header  uvec4 [blocks]: the GGUF block's first 16 bytes: d | dmin << 16, then the 12 bytes of
//           packed 6-bit scales and mins
// value = d * scale * q - dmin * min.
const uint KQ_PARTS = 1u;
struct Group { uvec4 q; float mul, add; };

Group load_group(uint row, uint g) {
    uint block = row * kq_row_blocks + g / GROUPS_PER_BLOCK;
    uvec4 head = w4[kq_blocks * 8u + block];
    uvec2 sm = scale_min_k4(g % GROUPS_PER_BLOCK, head.yzw);
    vec2 d_dmin = unpackHalf2x16(head.x);
    float scale = d_dmin.x * small_uint_float(sm.x), offset = -d_dmin.y * small_uint_float(sm.y);
    vec2 c = group_constants(scale, offset);
    return Group(w4[row * kq_row_blocks * 8u + g], c.x, c.y);
}

vec2 part_affine(Group G, uint part) { return vec2(G.mul, G.add); }

void raw_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    uint word = G.q[k];
    if (HALVES != 0u) {
        nibbles_biased(word, lo, hi);  // 8 integer instructions for 8 values
        return;
    }
    lo = bytes_as_floats(word & 0x0F0F0F0Fu);
    hi = bytes_as_floats((word >> 4) & 0x0F0F0F0Fu);
}
