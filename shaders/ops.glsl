// What the op shaders (norms, RoPE, attention, KV cache, element-wise) share: workgroup reductions,
// the CPU's float -> half rounding, and a tanh accurate near zero.
//
// A shader that reduces defines GK_REDUCE_SIZE (its workgroup size, a spec constant) before
// including this file: the reductions keep one partial per subgroup in shared memory, and there
// are never more subgroups than invocations, whatever the subgroup size.
#ifndef GK_OPS_GLSL
#define GK_OPS_GLSL

#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

#define GK_NEG_INF uintBitsToFloat(0xff800000u)

// The gated activations (gate values; the CPU's gk_silu and gk_gelu, the tanh form of GELU
// through one exp).
float gk_silu(float v) { return v / (1.0 + exp(-v)); }
float gk_gelu(float v) { return v / (1.0 + exp(-(1.5957691216057308 * v + 1.5957691216057308 * 0.044715 * v * v * v))); }

#ifdef GK_REDUCE_SIZE
shared float gk_red[GK_REDUCE_SIZE];

// The sum of v over the workgroup, in every invocation. Every invocation adds the subgroups'
// partials in the same order, so all get the same value. Call in uniform control flow.
float workgroup_sum(float v) {
    v = subgroupAdd(v);
    if (subgroupElect()) gk_red[gl_SubgroupID] = v;
    barrier();
    float s = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) s += gk_red[i];
    barrier();  // gk_red free again for the next reduction
    return s;
}

float workgroup_max(float v) {
    v = subgroupMax(v);
    if (subgroupElect()) gk_red[gl_SubgroupID] = v;
    barrier();
    float m = GK_NEG_INF;
    for (uint i = 0; i < gl_NumSubgroups; i++) m = max(m, gk_red[i]);
    barrier();
    return m;
}
#endif

// float -> half bits exactly as the CPU's gk_fp32_to_fp16 (kernels/fp16.h): round to nearest
// even, subnormals, infinities, quiet NaN. packHalf2x16 leaves the rounding to the device (AMD
// truncates), so the KV cache's halves are made here in integers.
uint f32_to_f16(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u | ((ax >> 13) & 0x3ffu);
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: infinity
    if (ax < 0x38800000u) {
        // below the smallest normal half: the value in units of 2^-24 is the 24-bit mantissa
        // shifted right by 126 - e, rounded to nearest even (0 when e < 102: under half a unit)
        uint e = ax >> 23;
        if (e < 102u) return sign;
        uint m = (ax & 0x7fffffu) | 0x800000u, s = 126u - e;
        uint q = m >> s, rem = m & ((1u << s) - 1u), halfway = 1u << (s - 1u);
        if (rem > halfway || (rem == halfway && (q & 1u) != 0u)) q++;
        return sign | q;
    }
    return sign | ((ax + 0xc8000fffu + ((ax >> 13) & 1u)) >> 13);  // rebias, round 13 bits to even
}

uint pack_f16(float lo, float hi) { return f32_to_f16(lo) | (f32_to_f16(hi) << 16); }

// tanh to a few ulp everywhere: a Taylor series below 1/4 (where 1 - e^-2x cancels; lavapipe's
// own tanh is off by 1e-3 relative there), (1 - e^-2|x|) / (1 + e^-2|x|) above, which never
// overflows (e^2x would for |x| > 44).
float gk_tanh(float x) {
    float a = abs(x);
    if (a < 0.25) {
        float x2 = x * x;
        return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    }
    float e = exp(-2.0 * a);
    float t = (1.0 - e) / (1.0 + e);
    return x < 0.0 ? -t : t;
}

#endif
