// Q6_K on the device (210 bytes per super-block, as in the GGUF): streams
//   low     uvec4 [blocks * 8]: low 4 bits of 32 elements (k_common.glsl order)
//   high    uvec2 [blocks * 8]: their top 2 bits; quarter k in word k / 2, its element m (< 4) at
//           bits 8m + 4 (k % 2) and element 4 + m two bits above
//   scales  uvec4 [blocks]: the 16 int8 sub-block scales
//   d       halves [blocks], two to a word
// value = d * scale * (q - 32); a group holds two 16-element sub-blocks (quarters 0-1 and 2-3).
const uint KQ_PARTS = 2u;
struct Group { uvec4 q; uvec2 h; vec2 mul, add; };

Group load_group(uint row, uint g) {
    uint block = row * kq_row_blocks + g / GROUPS_PER_BLOCK, sub = g % GROUPS_PER_BLOCK;
    uint gi = row * kq_row_blocks * 8u + g;
    // the two int8 scales, each plus 128 (its top bit flipped) through small_uint_float
    uint scales = (w1[kq_blocks * 48u + block * 4u + sub / 2u] >> (16u * (sub & 1u))) ^ 0x8080u;
    float d = unpackHalf2x16(w1[kq_blocks * 52u + block / 2u])[block & 1u];
    vec2 scale = d * (vec2(small_uint_float(scales & 0xFFu), small_uint_float((scales >> 8) & 0xFFu)) - 128.0);
    vec2 cx = group_constants(scale.x, -32.0 * scale.x), cy = group_constants(scale.y, -32.0 * scale.y);
    return Group(w4[gi], w2[kq_blocks * 16u + gi], vec2(cx.x, cy.x), vec2(cx.y, cy.y));
}

vec2 part_affine(Group G, uint part) { return part == 0u ? vec2(G.mul.x, G.add.x) : vec2(G.mul.y, G.add.y); }

void raw_quarter(Group G, uint k, out vec4 lo, out vec4 hi) {
    uint word = G.q[k];
    uint h = G.h[k >> 1] >> (4u * (k & 1u));
    lo = raw_values((word & 0x0F0F0F0Fu) | ((h << 4) & 0x30303030u));
    hi = raw_values(((word >> 4) & 0x0F0F0F0Fu) | ((h << 2) & 0x30303030u));
}
