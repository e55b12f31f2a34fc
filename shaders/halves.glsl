// Small unsigned ints to floats two at a time, for the quantized products: the values at bits
// 0..7 and 16..23 of a word, OR'd into the low mantissa bits of two halves of 1024 (exact up to
// 2047), come out of one unpackHalf2x16. Half the integer instructions of one value at a time
// through float bits (7 for Q4_0's 8 values of a word where that took 17), and integer
// instructions are what bounds a 4-bit product on a GPU (twice as many float units as integer).
#ifndef GK_HALVES_GLSL
#define GK_HALVES_GLSL

// Elements 0 and 2 from `even`, 1 and 3 from `odd` (each at bits 0.. and 16.. of its word), less
// offset.
vec4 halves_less(uint even, uint odd, float offset) {
    vec2 e = unpackHalf2x16(even | 0x64006400u), o = unpackHalf2x16(odd | 0x64006400u);
    return vec4(e.x, o.x, e.y, o.y) - (1024.0 + offset);
}

// The four bytes of b, byte 0 first, less offset.
vec4 bytes_less(uint b, float offset) {
    return halves_less(b & 0x00FF00FFu, (b >> 8u) & 0x00FF00FFu, offset);
}

// The low nibbles of w's four bytes (lo) and the high ones (hi), less offset.
void nibbles_less(uint w, float offset, out vec4 lo, out vec4 hi) {
    lo = halves_less(w & 0x000F000Fu, (w >> 8u) & 0x000F000Fu, offset);
    hi = halves_less((w >> 4u) & 0x000F000Fu, (w >> 12u) & 0x000F000Fu, offset);
}

// The biased forms (K-quant mv products): each value v (< 128) placed at mantissa bits 3..9 of a
// half of 1.0 comes out as 1 + v / 128, and no subtraction follows: the products fold the bias into
// their per-part constants (k_common.glsl's group_constants), as they do for the float-bit form,
// whose bias is as large (0.5 + v / 256). One integer instruction more than nibbles_less, eight
// float subtractions fewer. Folding nibbles_less's bias of 1024 instead (tried) put 2 of the 5
// K-quants outside test_mv_shapes.py's 1e-5 relative bound.
vec4 halves_biased(uint even, uint odd) {
    vec2 e = unpackHalf2x16(even | 0x3C003C00u), o = unpackHalf2x16(odd | 0x3C003C00u);
    return vec4(e.x, o.x, e.y, o.y);
}

// The four bytes of b (each < 128), byte 0 first, as 1 + byte / 128.
vec4 bytes_biased(uint b) {
    return halves_biased((b << 3u) & 0x03F803F8u, (b >> 5u) & 0x03F803F8u);
}

// The low nibbles of w's four bytes (lo) and the high ones (hi) as 1 + nibble / 128.
void nibbles_biased(uint w, out vec4 lo, out vec4 hi) {
    lo = halves_biased((w << 3u) & 0x00780078u, (w >> 5u) & 0x00780078u);
    hi = halves_biased((w >> 1u) & 0x00780078u, (w >> 9u) & 0x00780078u);
}

#endif
