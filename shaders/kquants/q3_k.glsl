// Q3_K on the device (110 bytes per super-block, as in the GGUF): streams
//   quants  uvec2 [blocks * 8]: low 2 bits of 32 elements (q2_k.glsl order)
//   high    uint [blocks * 8]: their third bits (pack_high_bits order)
//   scales  uint [blocks * 3]: the GGUF's 12 bytes of packed 6-bit scales (biased by 32)
//   d       halves [blocks], two to a word
// value = d * (scale - 32) * (q - 4) with q the 3-bit unsigned quant; a group holds two
// 16-element sub-blocks (quarters 0-1 and 2-3).
const uint KQ_PARTS = 2u;
struct Group { uvec2 q; uint h; vec2 mul, add; };

Group load_group(uint row, uint g) {
    uint block = row * kq_row_blocks + g / GROUPS_PER_BLOCK, sub = g % GROUPS_PER_BLOCK;
    uint gi = row * kq_row_blocks * 8u + g;
    // scales 4j .. 4j + 3 (j = sub / 2): low 4 bits from packed word j % 2 (nibble j / 2), top 2
    // bits from word 2 (bits 2j of each byte)
    uint j = sub / 2u, base = kq_blocks * 24u + block * 3u;
    uint word = ((w1[base + (j & 1u)] >> (4u * (j >> 1))) & 0x0F0F0F0Fu) | (((w1[base + 2u] >> (2u * j)) & 0x03030303u) << 4);
    uint s = word >> (16u * (sub & 1u));
    float d = unpackHalf2x16(w1[kq_blocks * 27u + block / 2u])[block & 1u];
    vec2 scale = d * (vec2(s & 0xFFu, (s >> 8) & 0xFFu) - 32.0);
    vec2 cx = group_constants(scale.x, -4.0 * scale.x), cy = group_constants(scale.y, -4.0 * scale.y);
    return Group(w2[gi], w1[kq_blocks * 16u + gi], vec2(cx.x, cy.x), vec2(cx.y, cy.y));
}

vec2 part_affine(Group G, uint part) { return part == 0u ? vec2(G.mul.x, G.add.x) : vec2(G.mul.y, G.add.y); }

void raw_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    uint t = G.q[k >> 1] >> (4u * (k & 1u));
    lo = raw_values((t & 0x03030303u) | high_bits_lo(G.h, k, 2u));
    hi = raw_values(((t >> 2) & 0x03030303u) | high_bits_hi(G.h, k, 2u));
}
