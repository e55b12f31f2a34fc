#version 450
// Y[c, row] (+)= dot(W[row], X[c]) for a K-quant W and many columns (prompt batches): a tiled fp32
// product through shared memory.
//
// A workgroup computes a BM x BN tile of rows x columns, walking K one 32-element group at a time:
// it dequantizes the BM rows' group into shared memory (a quarter of 4 rows' groups per invocation),
// copies the BN columns' 32 floats of X beside it, and each invocation adds the products of its
// TM rows x TN columns. Grid: x over ceil(n_out / BM) (spread over y past 65535), z over
// ceil(max_cols / BN); columns from n_cols(col_source) on and rows from n_out on are left alone.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "kquants/k_type.glsl"

layout(local_size_x_id = 0) in;  // (BM / TM) * (BN / TN)
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint TM = 4;  // multiples of 4
layout(constant_id = 4) const uint TN = 4;

layout(set = 0, binding = 2) readonly buffer X { vec4 x4[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n_out, n_in, col_source, accumulate; } p;

const uint BK = 32;
shared vec4 wt[BK * BM / 4];  // [k][row / 4]: the dequantized group, rows contiguous
shared vec4 xt[BK * BN / 4];  // [k][col / 4]

void main() {
    uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * BM;
    uint n_cols_all = n_cols(p.col_source), col0 = gl_WorkGroupID.z * BN;
    if (row0 >= p.n_out || col0 >= n_cols_all) {
        return;
    }
    uint cols = min(BN, n_cols_all - col0);
    kq_set_layout(p.n_out, p.n_in);
    uint n_groups = kq_row_blocks * GROUPS_PER_BLOCK, x_row = p.n_in / 4u;
    uint tid = gl_LocalInvocationID.x, WG = gl_WorkGroupSize.x;
    uint tm = tid % (BM / TM), tn = tid / (BM / TM);

    float acc[TM][TN];
    [[unroll]] for (uint i = 0; i < TM; i++) {
        [[unroll]] for (uint j = 0; j < TN; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (uint g = 0; g < n_groups; g++) {
        // quarter k of the group of rows 4 r4 .. 4 r4 + 3, stored transposed: vec4 stores of 4 rows
        for (uint i = tid; i < BM; i += WG) {
            uint r4 = i % (BM / 4u), k = i / (BM / 4u);
            vec4 lo[4], hi[4];
            [[unroll]] for (uint e = 0; e < 4u; e++) {
                dequant_quarter(load_group(min(row0 + 4u * r4 + e, p.n_out - 1u), g), k, lo[e], hi[e]);
            }
            [[unroll]] for (uint e = 0; e < 4u; e++) {
                wt[(8u * k + e) * (BM / 4u) + r4] = vec4(lo[0][e], lo[1][e], lo[2][e], lo[3][e]);
                wt[(8u * k + 4u + e) * (BM / 4u) + r4] = vec4(hi[0][e], hi[1][e], hi[2][e], hi[3][e]);
            }
        }
        // vec4 q of the 32 floats of columns 4 c4 .. 4 c4 + 3, transposed likewise
        for (uint i = tid; i < BN * 2u; i += WG) {
            uint q = i % 8u, c4 = i / 8u;
            vec4 v[4];
            [[unroll]] for (uint e = 0; e < 4u; e++) {
                uint c = 4u * c4 + e;
                v[e] = c < cols ? x4[(col0 + c) * x_row + g * 8u + q] : vec4(0.0);
            }
            [[unroll]] for (uint e = 0; e < 4u; e++) {
                xt[(4u * q + e) * (BN / 4u) + c4] = vec4(v[0][e], v[1][e], v[2][e], v[3][e]);
            }
        }
        barrier();
        [[unroll]] for (uint k = 0; k < BK; k++) {
            vec4 a[TM / 4], b[TN / 4];
            [[unroll]] for (uint i = 0; i < TM / 4u; i++) {
                a[i] = wt[k * (BM / 4u) + tm + i * (BM / TM)];
            }
            [[unroll]] for (uint j = 0; j < TN / 4u; j++) {
                b[j] = xt[k * (BN / 4u) + tn + j * (BN / TN)];
            }
            [[unroll]] for (uint i = 0; i < TM; i++) {
                [[unroll]] for (uint j = 0; j < TN; j++) {
                    acc[i][j] = fma(a[i / 4u][i % 4u], b[j / 4u][j % 4u], acc[i][j]);
                }
            }
        }
        barrier();
    }
    // invocation (tm, tn) holds rows 4 (tm + ii * BM / TM) + e and columns likewise
    [[unroll]] for (uint i = 0; i < TM; i++) {
        uint row = row0 + 4u * (tm + (i / 4u) * (BM / TM)) + i % 4u;
        [[unroll]] for (uint j = 0; j < TN; j++) {
            uint c = 4u * (tn + (j / 4u) * (BN / TN)) + j % 4u;
            if (row < p.n_out && c < cols) {
                uint o = (col0 + c) * p.n_out + row;
                y[o] = p.accumulate != 0u ? y[o] + acc[i][j] : acc[i][j];
            }
        }
    }
}
