// What mul_mv_32 and mul_mm_32 share: the product's bindings and push constants (products.py),
// reading activations and writing results.
#ifndef GK_PRODUCTS_32_GLSL
#define GK_PRODUCTS_32_GLSL

#include "common.glsl"
#include "types_32.glsl"
#ifdef FLAGS
#include "flags.glsl"
#else
#define GK_PASSED
#endif

layout(set = 0, binding = 2) GK_PASSED readonly buffer Xf { float X[]; };
layout(set = 0, binding = 2) GK_PASSED readonly buffer Xv { vec4 X4[]; };
layout(set = 0, binding = 3) GK_PASSED buffer Yf { float Y[]; };
layout(push_constant) uniform Push { uint n_out; uint n_in; uint col_source; uint accumulate; } p;

// Row groups beyond 65535 go on in z (a 256k-vocabulary output matrix).
uint row_group() { return gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x; }

// Elements k..k+3 of column col. Quantized rows are whole blocks (n_in % 32 == 0): always one
// aligned vec4. Float rows may end inside a block or be unaligned: the padding's zero weights
// must not meet what lies past the row (another column, or the buffer's end).
vec4 load_x(uint col, uint k) {
#ifdef FLOAT_ROWS
    if ((p.n_in & 3u) != 0u || k + 4u > p.n_in) {
        vec4 v = vec4(0.0);
        for (uint i = 0u; i < 4u; ++i) {
            if (k + i < p.n_in) {
                v[i] = X[col * p.n_in + k + i];
            }
        }
        return v;
    }
#endif
    return X4[(col * p.n_in + k) / 4u];
}

void store_y(uint col, uint row, float v) {
    uint i = col * p.n_out + row;
    Y[i] = p.accumulate != 0u ? Y[i] + v : v;
}

#endif
