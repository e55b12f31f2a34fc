#version 450
#extension GL_EXT_control_flow_attributes : require
// Y[c, r] (+)= dot(W row r, X[c]) for prompt batches, tiled through shared memory: a workgroup
// owns a BM x BN tile of Y (grid x/z: row tiles, y: column tiles) and walks the rows one block
// (32 elements) at a time. Each step its threads dequantize the BM rows' block once into Ws
// (one piece of 8 values a thread) and copy the BN columns' 32 activations into Xs; then every
// thread multiplies its TM x TN sub-tile out of shared memory (vec4 reads).
#include "products_32.glsl"

layout(local_size_x_id = 0) in;  // (BM / TM) * (BN / TN) threads
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint TM = 4;  // TM, TN: multiples of 4
layout(constant_id = 4) const uint TN = 4;

const uint WG = gl_WorkGroupSize.x;
// [k][m] and [k][n]: a thread's TM rows (TN columns) at one k are whole vec4s
shared vec4 Ws[BLOCK * BM / 4u];
shared vec4 Xs[BLOCK * BN / 4u];

void main() {
    uint m0 = row_group() * BM, n0 = gl_WorkGroupID.y * BN;
    uint cols = n_cols(p.col_source);
    if (m0 >= p.n_out || n0 >= cols) {
        return;  // the whole workgroup: no barrier is left waiting
    }
    uint nb = (p.n_in + BLOCK - 1u) / BLOCK;
    uint n_blocks = p.n_out * nb;
    uint tid = gl_LocalInvocationID.x;
    uint tm = tid % (BM / TM), tn = tid / (BM / TM);

    float acc[TM * TN];
    [[unroll]] for (uint i = 0u; i < TM * TN; ++i) {
        acc[i] = 0.0;
    }
    for (uint block = 0u; block < nb; ++block) {
        barrier();  // the last step's reads of Ws and Xs are done
        for (uint i = tid; i < BM * PIECES_PER_BLOCK; i += WG) {
            uint m = i / PIECES_PER_BLOCK, slot = i % PIECES_PER_BLOCK, u = slot / PIECES;
            // rows past n_out read the last one; never stored
            Unit un = load_unit(min(m0 + m, p.n_out - 1u) * nb + block, u, n_blocks);
            vec4 a, b;
            uint oa, ob;
            dequant_piece(un, u, slot % PIECES, a, b, oa, ob);
            [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                Ws[(oa + j) * (BM / 4u) + m / 4u][m % 4u] = a[j];
                Ws[(ob + j) * (BM / 4u) + m / 4u][m % 4u] = b[j];
            }
        }
        for (uint i = tid; i < BN * BLOCK / 4u; i += WG) {
            uint n = i / (BLOCK / 4u), k = (i % (BLOCK / 4u)) * 4u;
            vec4 x = n0 + n < cols ? load_x(n0 + n, block * BLOCK + k) : vec4(0.0);
            [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                Xs[(k + j) * (BN / 4u) + n / 4u][n % 4u] = x[j];
            }
        }
        barrier();
        [[unroll]] for (uint k = 0u; k < BLOCK; ++k) {
            vec4 w[TM / 4u], x[TN / 4u];
            [[unroll]] for (uint i = 0u; i < TM / 4u; ++i) {
                w[i] = Ws[k * (BM / 4u) + tm * (TM / 4u) + i];
            }
            [[unroll]] for (uint j = 0u; j < TN / 4u; ++j) {
                x[j] = Xs[k * (BN / 4u) + tn * (TN / 4u) + j];
            }
            [[unroll]] for (uint i = 0u; i < TM; ++i) {
                [[unroll]] for (uint j = 0u; j < TN; ++j) {
                    acc[i * TN + j] = fma(w[i / 4u][i % 4u], x[j / 4u][j % 4u], acc[i * TN + j]);
                }
            }
        }
    }
    [[unroll]] for (uint j = 0u; j < TN; ++j) {
        uint col = n0 + tn * TN + j;
        [[unroll]] for (uint i = 0u; i < TM; ++i) {
            uint row = m0 + tm * TM + i;
            if (row < p.n_out && col < cols) {
                store_y(col, row, acc[i * TN + j]);
            }
        }
    }
}
