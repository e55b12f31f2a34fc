// What mul_mv_32.comp and k_mul_mv.comp share for their fused decoding forms (products.py):
// -DNORM: the product of rms_norm(X) * gamma (binding 4); -DNORM -DGLU: W is the gate matrix with
// the up matrix stacked under it and Y = act(gate) * up, a workgroup's ROWS rows being ROWS / 2
// of each. Included after ROWS, COLS and the push constants p {n_out, n_in, ...} are declared.
#ifndef GK_MV_FORMS_GLSL
#define GK_MV_FORMS_GLSL

#include "ops.glsl"

#if defined(GLU) && !defined(NORM)
#error "the GLU form normalizes too"
#endif
#ifdef NORM
layout(constant_id = 3) const uint ACT = 0;  // 0 silu, 1 gelu
layout(constant_id = 4) const float EPS = 1e-5;
layout(set = 0, binding = 4) readonly buffer Gamma { vec4 gamma4[]; };
const uint SUMS = (ROWS + 1u) * COLS;  // the dot products, then each column's sum of squares
shared float totals[SUMS];              // every sum, for the outputs that need several
#else
const uint SUMS = ROWS * COLS;
#endif
#ifdef GLU
const uint OUT_ROWS = ROWS / 2u;
#else
const uint OUT_ROWS = ROWS;
#endif

// Rows of the matrix (the gate's and the up's with GLU).
uint weight_rows() {
#ifdef GLU
    return 2u * p.n_out;
#else
    return p.n_out;
#endif
}

// The matrix row of the workgroup's row r (< ROWS); rows past n_out read the last one, never stored.
uint weight_row(uint out0, uint r) {
#ifdef GLU
    return r < OUT_ROWS ? min(out0 + r, p.n_out - 1u) : p.n_out + min(out0 + r - OUT_ROWS, p.n_out - 1u);
#else
    return min(out0 + r, p.n_out - 1u);
#endif
}

#ifdef NORM
// One output of a normalizing form from its column's sums: the dot product with the gate (or
// only) row, with the up row (GLU), and the sum of squares of X.
float normed_output(float dot_row, float dot_up, float sum_sq) {
    float scale = inversesqrt(sum_sq / float(p.n_in) + EPS);
    float v = dot_row * scale;
#ifdef GLU
    v = (ACT == 0u ? gk_silu(v) : gk_gelu(v)) * (dot_up * scale);
#endif
    return v;
}
#endif

#endif
