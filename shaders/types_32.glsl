// The 32-element weight types on the device (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), as
// gpt4all_core/backend/vulkan/types_32.py packs them; one of TYPE_<NAME> is defined by the build.
//
// A matrix is n_out rows of nb = ceil(n_in / 32) blocks of 32 elements (float rows are padded
// with zeros to whole blocks). Its words: first the quants of every block, row by row
// (QWORDS words a block), so that a thread's load is one aligned uvec4 ("unit") and neighbouring
// threads read neighbouring units; then each per-block scalar in an array of its own, after
// them: halves (d of Q4_0, Q5_0, Q8_0) two to a word, words (the high bits of Q5_x, d and m of
// Q4_1/Q5_1 as a pair of halves) one a block.
//
// A unit turns into PIECES pieces of 8 values: two vec4 a, b that meet the activations at
// elements oa..oa+3 and ob..ob+3 of the block, so activations too are read as aligned vec4.
// Every type has 4 pieces a block (UNITS * PIECES = 4), which mul_mm_32 and get_rows_32 use.
#ifndef GK_TYPES_32_GLSL
#define GK_TYPES_32_GLSL

#include "halves.glsl"

layout(set = 0, binding = 1) readonly buffer WeightWords { uint W[]; };
layout(set = 0, binding = 1) readonly buffer WeightVec4 { uvec4 W4[]; };
layout(set = 0, binding = 1) readonly buffer WeightVec2 { uvec2 W2[]; };

const uint BLOCK = 32u;
const uint PIECES_PER_BLOCK = 4u;

struct Unit {
    uvec4 q;   // quants
    uvec4 q2;  // F32 only: the second half of its 8 floats
    vec2 dm;   // scale d and min m
    uint qh;   // Q5_x: the fifth bits of the block's 32 quants
};

// 1: quants become floats two at a time (halves.glsl), 0: one at a time, through float bits; mv
// products set it per type (products.mv_halves: on for these types, $GPT4ALL_CORE_VULKAN_HALVES for all)
layout(constant_id = 6) const uint HALVES = 0;

// The four bytes of x (each a small unsigned int) to floats less offset, without int-to-float
// conversions (slow on GPUs, and a product runs 4 instructions an element at most to keep up
// with memory): 2^23 + v has v as its low mantissa bits, and subtracting 2^23 + offset is exact.
vec4 byte_floats(uint x, float offset) {
    if (HALVES != 0u) {
        return bytes_less(x, offset);
    }
    return uintBitsToFloat(((uvec4(x) >> uvec4(0u, 8u, 16u, 24u)) & 0xFFu) | 0x4B000000u) - (8388608.0 + offset);
}

// Bits 0..3 of b to bit 4 of bytes 0..3: the four shifted copies of the multiply never overlap.
uint fifth_bits(uint b) { return (((b & 0xFu) * 0x204081u) & 0x01010101u) << 4u; }

float half_at(uint word_index, uint which) { return unpackHalf2x16(W[word_index] >> (16u * which)).x; }

#if defined(TYPE_Q4_0) || defined(TYPE_Q5_0) || defined(TYPE_Q8_0)
#define SCALE_AFTER_DOT
#endif

#if defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
// A block is 16 bytes of nibbles: byte j holds element j (low nibble) and j + 16 (high nibble),
// so word w gives elements 4w..4w+3 and 16+4w..16+4w+3: one unit is the whole block, or (SPLIT,
// matrix-vector products only) a half or a quarter of its words, for more threads a row.
layout(constant_id = 7) const uint SPLIT = 1;  // 1, 2 or 4
const uint QWORDS = 4u;
const uint UNITS = SPLIT;
const uint PIECES = 4u / SPLIT;
#define SPLIT_BLOCKS
#elif defined(TYPE_Q8_0)
// 32 signed bytes: two units of 16 elements, each two pieces of 8 consecutive elements.
const uint QWORDS = 8u;
const uint UNITS = 2u;
const uint PIECES = 2u;
#elif defined(TYPE_F16) || defined(TYPE_BF16)
// 32 halves: four units of 8 (one piece each).
const uint QWORDS = 16u;
const uint UNITS = 4u;
const uint PIECES = 1u;
#define FLOAT_ROWS
#elif defined(TYPE_F32)
// 32 floats: four units of 8 (two uvec4 each).
const uint QWORDS = 32u;
const uint UNITS = 4u;
const uint PIECES = 1u;
#define FLOAT_ROWS
#else
#error "define one of TYPE_F32 TYPE_F16 TYPE_BF16 TYPE_Q4_0 TYPE_Q4_1 TYPE_Q5_0 TYPE_Q5_1 TYPE_Q8_0"
#endif

// Unit u (< UNITS) of block g (row * nb + block) of a matrix of n_blocks blocks in all.
Unit load_unit(uint g, uint u, uint n_blocks) {
    Unit un;
    uint scalars = n_blocks * QWORDS;  // first word after the quants
#if defined(TYPE_F32)
    un.q = W4[(g * UNITS + u) * 2u];
    un.q2 = W4[(g * UNITS + u) * 2u + 1u];
#elif defined(SPLIT_BLOCKS)
    if (SPLIT == 1u) {
        un.q = W4[g];
    } else if (SPLIT == 2u) {
        un.q.xy = W2[g * 2u + u];
    } else {
        un.q.x = W[g * 4u + u];
    }
#else
    un.q = W4[g * UNITS + u];
#endif
#if defined(TYPE_Q4_0) || defined(TYPE_Q8_0)
    un.dm.x = half_at(scalars + g / 2u, g & 1u);
#elif defined(TYPE_Q4_1)
    un.dm = unpackHalf2x16(W[scalars + g]);
#elif defined(TYPE_Q5_0)
    un.qh = W[scalars + g];
    un.dm.x = half_at(scalars + n_blocks + g / 2u, g & 1u);
#elif defined(TYPE_Q5_1)
    un.qh = W[scalars + g];
    un.dm = unpackHalf2x16(W[scalars + n_blocks + g]);
#endif
    return un;
}

// Piece p (< PIECES) of unit u of a block: values a at elements oa.., b at ob.. of the block.
// Types with one scale (SCALE_AFTER_DOT) leave it out: mul_mv multiplies a whole dot by it.
void piece(Unit un, uint u, uint p, out vec4 a, out vec4 b, out uint oa, out uint ob) {
#if defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
    oa = 4u * (u * PIECES + p);  // the unit's words are the block's u * PIECES on
    ob = 16u + oa;
#if defined(TYPE_Q4_0) || defined(TYPE_Q4_1)
    if (HALVES != 0u) {  // each nibble straight into a half: 7 integer instructions for 8 values
#if defined(TYPE_Q4_0)
        nibbles_less(un.q[p], 8.0, a, b);
#else
        nibbles_less(un.q[p], 0.0, a, b);
        a = fma(a, un.dm.xxxx, un.dm.yyyy);
        b = fma(b, un.dm.xxxx, un.dm.yyyy);
#endif
        return;
    }
#endif
    uint lo = un.q[p] & 0x0F0F0F0Fu, hi = (un.q[p] >> 4u) & 0x0F0F0F0Fu;
#if defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
    lo |= fifth_bits(un.qh >> oa);
    hi |= fifth_bits(un.qh >> ob);
#endif
#if defined(TYPE_Q4_0)
    a = byte_floats(lo, 8.0);
    b = byte_floats(hi, 8.0);
#elif defined(TYPE_Q5_0)
    a = byte_floats(lo, 16.0);
    b = byte_floats(hi, 16.0);
#else
    a = fma(byte_floats(lo, 0.0), un.dm.xxxx, un.dm.yyyy);
    b = fma(byte_floats(hi, 0.0), un.dm.xxxx, un.dm.yyyy);
#endif
#elif defined(TYPE_Q8_0)
    // a signed byte s plus 128 is its bits with the top one flipped
    a = byte_floats(un.q[2u * p] ^ 0x80808080u, 128.0);
    b = byte_floats(un.q[2u * p + 1u] ^ 0x80808080u, 128.0);
    oa = 16u * u + 8u * p;
    ob = oa + 4u;
#elif defined(TYPE_F16)
    a = vec4(unpackHalf2x16(un.q.x), unpackHalf2x16(un.q.y));
    b = vec4(unpackHalf2x16(un.q.z), unpackHalf2x16(un.q.w));
    oa = 8u * u;
    ob = oa + 4u;
#elif defined(TYPE_BF16)
    // a bfloat16 is the high half of a float32
    a = uintBitsToFloat(uvec4(un.q.x << 16u, un.q.x & 0xFFFF0000u, un.q.y << 16u, un.q.y & 0xFFFF0000u));
    b = uintBitsToFloat(uvec4(un.q.z << 16u, un.q.z & 0xFFFF0000u, un.q.w << 16u, un.q.w & 0xFFFF0000u));
    oa = 8u * u;
    ob = oa + 4u;
#elif defined(TYPE_F32)
    a = uintBitsToFloat(un.q);
    b = uintBitsToFloat(un.q2);
    oa = 8u * u;
    ob = oa + 4u;
#endif
}

// The piece's values, scale included.
void dequant_piece(Unit un, uint u, uint p, out vec4 a, out vec4 b, out uint oa, out uint ob) {
    piece(un, u, p, a, b, oa, ob);
#ifdef SCALE_AFTER_DOT
    a *= un.dm.x;
    b *= un.dm.x;
#endif
}

#endif
