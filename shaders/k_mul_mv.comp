#version 450
// Y[c, row] (+)= dot(W[row], X[c]) for a K-quant W and a few columns c (one to a few tokens).
//
// A workgroup owns ROWS rows and COLS columns; its WG threads split the rows' 32-element groups
// between them, so each group of each row is read once for all COLS columns and a thread's slice
// of X (8 floats at a time) is read once for all ROWS rows. Partial sums are added within each
// subgroup, then across subgroups through shared memory. Grid: x, y over ceil(n_out / ROWS)
// workgroups (x + y * num_x, kept within 65535 each), z over the column blocks of COLS; columns
// from n_cols(col_source) on and rows from n_out on are left alone.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "kquants/k_type.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const uint COLS = 1;

layout(set = 0, binding = 2) readonly buffer X { vec4 x4[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n_out, n_in, col_source, accumulate; } p;

shared float partial[ROWS * COLS * gl_WorkGroupSize.x];

void main() {
    uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * ROWS;
    uint n_cols_all = n_cols(p.col_source), col0 = gl_WorkGroupID.z * COLS;
    if (row0 >= p.n_out || col0 >= n_cols_all) {
        return;  // the whole workgroup: nothing to write
    }
    uint cols = min(COLS, n_cols_all - col0);
    kq_set_layout(p.n_out, p.n_in);
    uint n_groups = kq_row_blocks * GROUPS_PER_BLOCK, x_row = p.n_in / 4u;

    float acc[ROWS][COLS];
    [[unroll]] for (uint r = 0; r < ROWS; r++) {
        [[unroll]] for (uint c = 0; c < COLS; c++) {
            acc[r][c] = 0.0;
        }
    }
    for (uint g = gl_LocalInvocationID.x; g < n_groups; g += gl_WorkGroupSize.x) {
        Group G[ROWS];
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            G[r] = load_group(min(row0 + r, p.n_out - 1u), g);  // a row past the end: computed, not written
        }
        [[unroll]] for (uint k = 0; k < 4u; k++) {
            vec4 lo[ROWS], hi[ROWS];
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                dequant_quarter(G[r], k, lo[r], hi[r]);
            }
            uint xi = g * 8u + 2u * k;
            [[unroll]] for (uint c = 0; c < COLS; c++) {
                if (c < cols) {
                    vec4 xa = x4[(col0 + c) * x_row + xi], xb = x4[(col0 + c) * x_row + xi + 1u];
                    [[unroll]] for (uint r = 0; r < ROWS; r++) {
                        acc[r][c] += dot(lo[r], xa) + dot(hi[r], xb);
                    }
                }
            }
        }
    }

    // Sum the partial sums: within subgroups, then subgroup by subgroup in shared memory.
    const uint RC = ROWS * COLS;
    [[unroll]] for (uint r = 0; r < ROWS; r++) {
        [[unroll]] for (uint c = 0; c < COLS; c++) {
            acc[r][c] = subgroupAdd(acc[r][c]);
        }
    }
    if (gl_NumSubgroups > 1u) {
        if (subgroupElect()) {
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                [[unroll]] for (uint c = 0; c < COLS; c++) {
                    partial[gl_SubgroupID * RC + c * ROWS + r] = acc[r][c];
                }
            }
        }
        barrier();
    }
    for (uint i = gl_LocalInvocationID.x; i < RC; i += gl_WorkGroupSize.x) {
        uint r = i % ROWS, c = i / ROWS;
        float sum = 0.0;
        if (gl_NumSubgroups > 1u) {
            for (uint s = 0; s < gl_NumSubgroups; s++) {
                sum += partial[s * RC + i];
            }
        } else {
            // one subgroup: every invocation holds every sum; pick this (r, c) without indexing by i
            [[unroll]] for (uint rr = 0; rr < ROWS; rr++) {
                [[unroll]] for (uint cc = 0; cc < COLS; cc++) {
                    sum = (rr == r && cc == c) ? acc[rr][cc] : sum;
                }
            }
        }
        uint row = row0 + r;
        if (row < p.n_out && c < cols) {
            uint o = (col0 + c) * p.n_out + row;
            y[o] = p.accumulate != 0u ? y[o] + sum : sum;
        }
    }
}
