// Q2_K on the device (84 bytes per super-block, as in the GGUF): streams
//   quants  uvec2 [blocks * 8]: 2-bit quants of 32 elements; quarter k in word k / 2, its element
//           m (< 4) at bits 8m + 4 (k % 2) and element 4 + m two bits above
//   scales  uvec4 [blocks]: the 16 bytes scale | min << 4 of the 16-element sub-blocks
//   dm      uint [blocks]: d | dmin << 16
// value = d * scale * q - dmin * min; a group holds two sub-blocks (quarters 0-1 and 2-3).
const uint KQ_PARTS = 2u;
struct Group { uvec2 q; vec2 mul, add; };

Group load_group(uint row, uint g) {
    uint block = row * kq_row_blocks + g / GROUPS_PER_BLOCK, sub = g % GROUPS_PER_BLOCK;
    uint sm = w1[kq_blocks * 16u + block * 4u + sub / 2u] >> (16u * (sub & 1u));
    vec2 d_dmin = unpackHalf2x16(w1[kq_blocks * 20u + block]);
    vec2 scale = d_dmin.x * vec2(sm & 0xFu, (sm >> 8) & 0xFu);
    vec2 offset = -d_dmin.y * vec2((sm >> 4) & 0xFu, (sm >> 12) & 0xFu);
    vec2 cx = group_constants(scale.x, offset.x), cy = group_constants(scale.y, offset.y);
    return Group(w2[row * kq_row_blocks * 8u + g], vec2(cx.x, cy.x), vec2(cx.y, cy.y));
}

vec2 part_affine(Group G, uint part) { return part == 0u ? vec2(G.mul.x, G.add.x) : vec2(G.mul.y, G.add.y); }

void raw_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    uint t = G.q[k >> 1] >> (4u * (k & 1u));
    lo = raw_values(t & 0x03030303u);
    hi = raw_values((t >> 2) & 0x03030303u);
}
