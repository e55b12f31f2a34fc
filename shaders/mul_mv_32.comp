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
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "products_32.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 4;
layout(constant_id = 2) const uint COLS = 1;

const uint WG = gl_WorkGroupSize.x;
// a subgroup may be as wide as 128 lanes: the last one can reach past WG
shared float partial[WG + 128u];

float dot_acc(vec4 w, vec4 x, float acc) {
    return fma(w.w, x.w, fma(w.z, x.z, fma(w.y, x.y, fma(w.x, x.x, acc))));
}

void main() {
    uint row0 = row_group() * ROWS;
    uint n_cols_all = n_cols(p.col_source);
    uint col0 = gl_WorkGroupID.y * COLS;
    if (row0 >= p.n_out || col0 >= n_cols_all) {
        return;  // the whole workgroup: no barrier is left waiting
    }
    uint cols = min(COLS, n_cols_all - col0);
    uint nb = (p.n_in + BLOCK - 1u) / BLOCK;
    uint n_blocks = p.n_out * nb;

    float acc[ROWS * COLS];
    [[unroll]] for (uint i = 0u; i < ROWS * COLS; ++i) {
        acc[i] = 0.0;
    }
    for (uint unit = gl_LocalInvocationID.x; unit < nb * UNITS; unit += WG) {
        uint block = unit / UNITS, u = unit % UNITS;
        Unit un[ROWS];
        [[unroll]] for (uint r = 0u; r < ROWS; ++r) {  // rows past n_out read the last one; never stored
            un[r] = load_unit(min(row0 + r, p.n_out - 1u) * nb + block, u, n_blocks);
        }
        [[unroll]] for (uint pc = 0u; pc < PIECES; ++pc) {
            vec4 a[ROWS], b[ROWS];
            uint oa, ob;
            [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
                piece(un[r], u, pc, a[r], b[r], oa, ob);
            }
            uint k = block * BLOCK;
            [[unroll]] for (uint c = 0u; c < COLS; ++c) {
                if (c < cols) {
                    vec4 xa = load_x(col0 + c, k + oa), xb = load_x(col0 + c, k + ob);
                    [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
#ifdef SCALE_AFTER_DOT
                        acc[r * COLS + c] = fma(un[r].dm.x, dot_acc(b[r], xb, dot_acc(a[r], xa, 0.0)),
                                                acc[r * COLS + c]);
#else
                        acc[r * COLS + c] = dot_acc(b[r], xb, dot_acc(a[r], xa, acc[r * COLS + c]));
#endif
                    }
                }
            }
        }
    }

    [[unroll]] for (uint i = 0u; i < ROWS * COLS; ++i) {
        if (i % COLS < cols) {
            acc[i] = subgroupAdd(acc[i]);
        }
    }
    // pairs go in rounds of span: lane l of every subgroup leaves its sum of pair first + l
    uint lane = gl_SubgroupInvocationID, span = min(gl_SubgroupSize, WG);
    for (uint first = 0u; first < ROWS * COLS; first += span) {
        float mine = 0.0;
        [[unroll]] for (uint i = 0u; i < ROWS * COLS; ++i) {
            mine = i == first + lane ? acc[i] : mine;
        }
        barrier();
        if (lane < span) {
            partial[gl_SubgroupID * span + lane] = mine;
        }
        barrier();
        uint t = gl_LocalInvocationID.x, i = first + t;
        if (t < span && i < ROWS * COLS) {
            uint r = i / COLS, c = i % COLS;
            if (row0 + r < p.n_out && c < cols) {
                float sum = 0.0;
                for (uint s = 0u; s < gl_NumSubgroups; ++s) {
                    sum += partial[s * span + t];
                }
                store_y(col0 + c, row0 + r, sum);
            }
        }
    }
}
