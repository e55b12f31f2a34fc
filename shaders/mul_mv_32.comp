#version 450
#extension GL_EXT_control_flow_attributes : require
// Y[c, r] (+)= dot(W row r, X[c]) for few columns: the weights stream through once, every block
// meeting all of the workgroup's columns while in registers.
//
// A workgroup owns ROWS rows and COLS columns (grid x/z: row groups, y: column groups). Its
// threads split the rows' units (types_32.glsl) between them, thread t taking units t, t + WG,
// ...: neighbouring threads read neighbouring 16 bytes of a row. Sums go through subgroupAdd and
// then across subgroups through shared memory, in rounds of one subgroup's width (one round on a
// GPU with 32-wide subgroups).
//
// Fused forms, for decoding (one dispatch and one barrier fewer each):
// -DNORM (mul_mv_<type>_norm): Y = W rms_norm(X) gamma, binding 4 gamma [n_in]: the workgroup adds
//   the squares of the X it reads anyway, and scales the dot products by 1 / rms at the end.
// -DNORM -DGLU (mul_mv_<type>_norm_glu): W is the gate matrix with the up matrix stacked under it
//   ([2 n_out, n_in]); Y = act(gate) * up of the normalized X, act by ACT (0 silu, 1 gelu). A
//   workgroup's ROWS rows are ROWS / 2 rows of each.
// -DNORM -DROPE (mul_mv_<type>_norm_rope): q, k or v of a decode step rotated and stored where
//   attention reads it (mv_forms.glsl).
// -DFLAGS (the *_flags forms, one column): ordered by stage flags instead of a barrier
//   (flags.glsl): the workgroup loads its first units, waits for the stage before, then reads X
//   once into shared memory (XS vec4s, id 24) and takes it from there.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "products_32.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 4;
layout(constant_id = 2) const uint COLS = 1;
layout(constant_id = 5) const uint UNROLL = 1;  // units a thread loads before using (3, 4: the fused forms')

const uint WG = gl_WorkGroupSize.x;
// a subgroup may be as wide as 128 lanes: the last one can reach past WG
shared float partial[WG + 128u];

#include "mv_forms.glsl"

// Elements k..k+3 of column col of X.
vec4 x_at(uint col, uint k) {
#ifdef FLAGS
    return xs[xs_slot(k / 4u)];  // COLS == 1
#else
    return load_x(col, k);
#endif
}

// The ROWS rows' units first, first + WG, ... (UNROLL of them) that a thread takes in one round.
void load_round(out Unit un[UNROLL][ROWS], uint first, uint out0, uint nb, uint n_units, uint n_blocks) {
    [[unroll]] for (uint j = 0u; j < UNROLL; ++j) {
        uint unit = min(first + j * WG, n_units - 1u);  // past the end: reloaded, never used
        [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
            un[j][r] = load_unit(weight_row(out0, r) * nb + unit / UNITS, unit % UNITS, n_blocks);
        }
    }
}

void main() {
    uint out0 = row_group() * OUT_ROWS;
    uint col0 = gl_WorkGroupID.y * COLS;
    uint cols = cols_from(p.col_source, col0, COLS);
    if (out0 >= p.n_out || cols == 0u) {
#ifdef FLAGS
        signal_stage();
#endif
        return;  // the whole workgroup: no barrier is left waiting
    }
    uint nb = (p.n_in + BLOCK - 1u) / BLOCK;
    uint n_blocks = weight_rows() * nb;

    float acc[SUMS];
    [[unroll]] for (uint i = 0u; i < SUMS; ++i) {
        acc[i] = 0.0;
    }
    uint n_units = nb * UNITS;
    // UNROLL of the thread's units loaded before any is used: more bytes in flight at once
    Unit un[UNROLL][ROWS];
#ifdef FLAGS
    load_round(un, gl_LocalInvocationID.x, out0, nb, n_units, n_blocks);  // weights: nothing to wait for
    await_stage();
    for (uint i = gl_LocalInvocationID.x; i < p.n_in / 4u; i += WG) {
        xs[xs_slot(i)] = X4[i];
    }
    barrier();
#endif
    for (uint first = gl_LocalInvocationID.x; first < n_units; first += WG * UNROLL) {
#ifdef FLAGS
        if (first != gl_LocalInvocationID.x)  // the first round came before the wait
#endif
        load_round(un, first, out0, nb, n_units, n_blocks);
        [[unroll]] for (uint j = 0u; j < UNROLL; ++j) {
            uint unit = first + j * WG;
            if (unit >= n_units) {
                break;
            }
            uint block = unit / UNITS, u = unit % UNITS;
            [[unroll]] for (uint pc = 0u; pc < PIECES; ++pc) {
                vec4 a[ROWS], b[ROWS];
                uint oa, ob;
                [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
                    piece(un[j][r], u, pc, a[r], b[r], oa, ob);
                }
                uint k = block * BLOCK;
                [[unroll]] for (uint c = 0u; c < COLS; ++c) {
                    if (c < cols) {
                        vec4 xa = x_at(col0 + c, k + oa), xb = x_at(col0 + c, k + ob);
#ifdef NORM
                        norm_x(xa, xb, (k + oa) / 4u, (k + ob) / 4u, acc[ROWS * COLS + c]);
#endif
                        [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
#ifdef SCALE_AFTER_DOT
                            acc[r * COLS + c] = fma(un[j][r].dm.x, dot_acc(b[r], xb, dot_acc(a[r], xa, 0.0)),
                                                    acc[r * COLS + c]);
#else
                            acc[r * COLS + c] = dot_acc(b[r], xb, dot_acc(a[r], xa, acc[r * COLS + c]));
#endif
                        }
                    }
                }
            }
        }
    }

    [[unroll]] for (uint i = 0u; i < SUMS; ++i) {
        if (i % COLS < cols) {
            acc[i] = subgroupAdd(acc[i]);
        }
    }
    // sums go in rounds of span: lane l of every subgroup leaves its part of sum first + l
    uint lane = gl_SubgroupInvocationID, span = min(gl_SubgroupSize, WG);
    for (uint first = 0u; first < SUMS; first += span) {
        float mine = 0.0;
        [[unroll]] for (uint i = 0u; i < SUMS; ++i) {
            mine = i == first + lane ? acc[i] : mine;
        }
        barrier();
        if (lane < span) {
            partial[gl_SubgroupID * span + lane] = mine;
        }
        barrier();
        uint t = gl_LocalInvocationID.x, i = first + t;
        if (t < span && i < SUMS) {
            float sum = 0.0;
            for (uint s = 0u; s < gl_NumSubgroups; ++s) {
                sum += partial[s * span + t];
            }
#ifdef NORM
            totals[i] = sum;
#else
            uint r = i / COLS, c = i % COLS;
            if (out0 + r < p.n_out && c < cols) {
                store_y(col0 + c, out0 + r, sum);
            }
#endif
        }
    }
#ifdef ROPE
    barrier();
    for (uint i = gl_LocalInvocationID.x; i < OUT_ROWS / 2u * COLS; i += WG) {
        uint r = 2u * (i / COLS), c = i % COLS;
        if (out0 + r < p.n_out && c < cols) {  // n_out is even: so is out0 + r + 1 < n_out
            float sum_sq = totals[ROWS * COLS + c];
            store_rope_pair(col0 + c, out0 + r, normed_output(totals[r * COLS + c], 0.0, sum_sq),
                            normed_output(totals[(r + 1u) * COLS + c], 0.0, sum_sq));
        }
    }
#elif defined(NORM)
    barrier();
    for (uint i = gl_LocalInvocationID.x; i < OUT_ROWS * COLS; i += WG) {
        uint r = i / COLS, c = i % COLS;
        if (out0 + r < p.n_out && c < cols) {
#ifdef GLU
            float up = totals[(r + OUT_ROWS) * COLS + c];
#else
            float up = 0.0;  // unused
#endif
            store_y(col0 + c, out0 + r, normed_output(totals[i], up, totals[ROWS * COLS + c]));
        }
    }
#endif
#ifdef FLAGS
    signal_stage();
#endif
}
