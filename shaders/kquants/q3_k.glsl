// Q3_K on the device (110 bytes per super-block, as in the GGUF): streams
//   quants  uvec2 [blocks * 8]: low 2 bits of 32 elements (q2_k.glsl order)
//   high    uint [blocks * 8]: their third bits (pack_high_bits order)
//   scales  uint [blocks * 3]: the GGUF's 12 bytes of packed 6-bit scales (biased by 32)
//   d       halves [blocks], two to a word
// value = d * (scale - 32) * (q - 4) with q the 3-bit unsigned quant; a group holds two
// 16-element sub-blocks (quarters 0-1 and 2-3).
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
    return Group(w2[gi], w1[kq_blocks * 16u + gi], 256.0 * scale, -132.0 * scale);
}

void dequant_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    uint t = G.q[k >> 1] >> (4u * (k & 1u));
    float mul = k < 2u ? G.mul.x : G.mul.y, add = k < 2u ? G.add.x : G.add.y;
    lo = quarter_to_vec4((t & 0x03030303u) | high_bits_lo(G.h, k, 2u), mul, add);
    hi = quarter_to_vec4(((t >> 2) & 0x03030303u) | high_bits_hi(G.h, k, 2u), mul, add);
}
