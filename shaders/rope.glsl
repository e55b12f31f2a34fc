// RoPE's angle and rotation, shared by rope.comp and the fused Q, K products (mv_forms.glsl).
//
// A table entry f (ops.rope_freqs, one per rotated pair) holds the pair's angle per position in
// turns, YaRN and freq_factors folded in, as three floats a + b + c where a and b have at most 12
// significant bits: with |pos| < 2^24 split into two 12-bit parts, the four products of parts
// are exact and their fractions sum to the angle mod one turn with ~1e-6 rad error at any
// position (pos * freq in float would be off by 1e-2 rad at pos 1e5).
#ifndef GK_ROPE_GLSL
#define GK_ROPE_GLSL

// (cos, sin) of the angle of table entry f at position pos
vec2 rope_turn_cs(int pos, vec4 f) {
    const int p_hi = pos & ~0xfff;
    const float ph = float(p_hi), pl = float(pos - p_hi);
    float t = fract(ph * f.x) + fract(ph * f.y) + fract(pl * f.x) + fract(pl * f.y) + fract(float(pos) * f.z);
    t = fract(t + 0.5) - 0.5;  // [-1/2, 1/2) turn: the range where sin and cos are accurate
    const float theta = 6.2831853071795865 * t;
    return vec2(cos(theta), sin(theta));
}

vec2 rotate(vec2 v, vec2 cs) { return vec2(v.x * cs.x - v.y * cs.y, v.x * cs.y + v.y * cs.x); }

#endif
