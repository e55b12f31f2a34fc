// What the K-quant shaders share: the packed weight buffer (binding 1) and the small decoding
// steps every type is made of.
//
// Every type is repacked at upload (gpt4all_core/backend/vulkan/types_k.py) into streams of one
// matrix [n_out rows, nb super-blocks of 256], one stream after another in binding 1: quants as
// aligned uvec4/uvec2 words, scales as words, fp16 values as halves. A row's 256-element
// super-block is read as 8 groups of 32 elements; a group is read as 4 quarters of 8 elements.
// Within a quarter word the packer puts elements 0..3 in the low nibble (or 2-bit field) of bytes
// 0..3 and elements 4..7 in the next bits, so one mask gives four small ints, one per byte.
//
// A byte b (< 128) becomes a float without an int-to-float conversion (a slow instruction on
// NVIDIA): the bits 0x3F000000 | b << 16 are exactly 0.5 + b / 256, and one fma turns that into
// the value (group_constants).
#ifndef GK_K_COMMON_GLSL
#define GK_K_COMMON_GLSL

#include "halves.glsl"

layout(set = 0, binding = 1) readonly buffer W4 { uvec4 w4[]; };
layout(set = 0, binding = 1) readonly buffer W2 { uvec2 w2[]; };
layout(set = 0, binding = 1) readonly buffer W1 { uint w1[]; };

#define QK_K 256u
#define GROUPS_PER_BLOCK 8u

// fp16 scales are read with unpackHalf2x16: a conversion, on NVIDIA a unit apart from the integer
// ALUs the quants keep busy. Subnormal halves (Q6_K's d is often ~1e-5) must convert exactly:
// test_products_k.py checks it on the device it runs on.

// The four bytes of b (each < 128) as floats 0.5 + byte / 256, byte 0 first.
vec4 bytes_as_floats(uint b) {
    return vec4(uintBitsToFloat(((b << 16) & 0x00FF0000u) | 0x3F000000u),
                uintBitsToFloat(((b << 8) & 0x00FF0000u) | 0x3F000000u),
                uintBitsToFloat((b & 0x00FF0000u) | 0x3F000000u),
                uintBitsToFloat(((b >> 8) & 0x00FF0000u) | 0x3F000000u));
}

// 1: the quants become floats two at a time (halves.glsl's biased forms), 0: one at a time; mv
// products set it (products.mv_halves: off for the K-quants unless $GPT4ALL_CORE_VULKAN_HALVES=1)
layout(constant_id = 6) const uint HALVES = 0;

// Every type's quarter k of a group is mul * raw + add, raw being its quants as floats and (mul,
// add) one pair per part of the group (KQ_PARTS: 1 for Q4_K and Q5_K, whose scale covers 32
// elements, 2 for the types scaled per 16); each type defines raw_quarter() and part_affine().
// The products multiply by mul after the dot with raw and add add * sum(X) (k_mul_mv.comp), so no
// quant is scaled one by one.
//
// raw: a quant q as a float with a bias, never subtracted: with HALVES 1 + q / 128 (halves.glsl, two
// a conversion), else 0.5 + q / 256 from the float bits above (none); then mul = scale / (raw's step for
// one q) and add = offset - mul * (raw of q = 0), so that mul * raw + add = scale * q + offset.
const float RAW_UNIT = HALVES != 0u ? 128.0 : 256.0;  // 1 / (raw's step for one q)

vec4 raw_values(uint b) {
    return HALVES != 0u ? bytes_biased(b) : bytes_as_floats(b);
}

// (mul, add) of a part for raw values, from its scale and offset.
vec2 group_constants(float scale, float offset) {
    float mul = RAW_UNIT * scale;
    return vec2(mul, HALVES != 0u ? offset - mul : offset - 0.5 * mul);
}

// High bits of a quarter, packed one word per group by pack_high_bits() in types_k.py: the bit of
// element m (< 4) of quarter k sits at 8m + 4 + k, of element 4 + m at 8m + k. These put them at
// bit `at` of byte m, for the low and the high four elements.
uint high_bits_lo(uint h, uint k, uint at) { return ((h >> k) >> (4u - at)) & (0x01010101u << at); }
uint high_bits_hi(uint h, uint k, uint at) { return ((h >> k) << at) & (0x01010101u << at); }

// The layout every type's load_group() reads: how many super-blocks the whole matrix has (its
// streams follow one another) and how many a row has. Set once by main().
uint kq_blocks;
uint kq_row_blocks;

void kq_set_layout(uint n_rows, uint n_in) {
    kq_row_blocks = n_in / QK_K;
    kq_blocks = n_rows * kq_row_blocks;
}

// Q4_K/Q5_K: the 6-bit scale (x) and min (y) of sub-block s from the 12 packed bytes sc (GGUF order):
// for s < 4 the low 6 bits of byte s of words x and y; else the low and high nibble of byte s - 4
// of word z, topped by the high 2 bits of byte s - 4 of x and y. A branch: where a subgroup's
// sub-blocks are all below 4 or all above (k_mul_mv.comp's sorted groups), it runs one side.
uvec2 scale_min_k4(uint s, uvec3 sc) {
    uint b = 8u * (s & 3u);
    if (s < 4u) {
        return (uvec2(sc.x, sc.y) >> b) & 63u;
    }
    return ((uvec2(sc.z, sc.z >> 4) >> b) & 15u) | (((uvec2(sc.x, sc.y) >> (b + 6u)) & 3u) << 4);
}

// A uint below 2^23 as a float through its bits (2^23 + v, less 2^23): an int-to-float conversion
// is a slow instruction on NVIDIA.
float small_uint_float(uint v) {
    return uintBitsToFloat(0x4B000000u | v) - 8388608.0;
}

#endif
