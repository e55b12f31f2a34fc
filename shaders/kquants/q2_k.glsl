// Q2_K on the device (84 bytes per super-block, as in the GGUF): streams
//   quants  uvec2 [blocks * 8]: 2-bit quants of 32 elements; quarter k in word k / 2, its element
//           m (< 4) at bits 8m + 4 (k % 2) and element 4 + m two bits above
//   scales  uvec4 [blocks]: the 16 bytes scale | min << 4 of the 16-element sub-blocks
//   dm      uint [blocks]: d | dmin << 16
// value = d * scale * q - dmin * min; a group holds two sub-blocks (quarters 0-1 and 2-3).
struct Group { uvec2 q; vec2 mul, add; };

Group load_group(uint row, uint g) {
    uint block = row * kq_row_blocks + g / GROUPS_PER_BLOCK, sub = g % GROUPS_PER_BLOCK;
    uint sm = w1[kq_blocks * 16u + block * 4u + sub / 2u] >> (16u * (sub & 1u));
    vec2 d_dmin = unpackHalf2x16(w1[kq_blocks * 20u + block]);
    vec2 scale = d_dmin.x * vec2(sm & 0xFu, (sm >> 8) & 0xFu);
    vec2 offset = -d_dmin.y * vec2((sm >> 4) & 0xFu, (sm >> 12) & 0xFu);
    return Group(w2[row * kq_row_blocks * 8u + g], 256.0 * scale, offset - 128.0 * scale);
}

void dequant_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    uint t = G.q[k >> 1] >> (4u * (k & 1u));
    float mul = k < 2u ? G.mul.x : G.mul.y, add = k < 2u ? G.add.x : G.add.y;
    lo = quarter_to_vec4(t & 0x03030303u, mul, add);
    hi = quarter_to_vec4((t >> 2) & 0x03030303u, mul, add);
}
