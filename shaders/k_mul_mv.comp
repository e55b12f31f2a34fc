#version 450
// Y[c, row] (+)= dot(W[row], X[c]) for a K-quant W and a few columns c (one to a few tokens).
//
// A workgroup owns ROWS rows and COLS columns; its WG threads split the rows' 32-element groups
// between them, so each group of each row is read once for all COLS columns and a thread's slice
// of X (8 floats at a time) is read once for all ROWS rows. Partial sums are added within each
// subgroup, then across subgroups through shared memory. By default (K_MODE's AFFINE) a group's
// quants are not scaled one by one: each part's dot with X is scaled once (affine_group). Grid: x, y
// over ceil(n_out / ROWS) workgroups (x + y * num_x, kept within 65535 each), z over the column
// blocks of COLS; columns from n_cols(col_source) on and rows from n_out on are left alone.
//
// Fused forms for decoding, as mul_mv_32.comp's: -DNORM (Y = W rms_norm(X) gamma, gamma at binding
// 4) and -DNORM -DGLU (W the gate matrix with the up matrix stacked under it, Y = act(gate) * up),
// -DNORM -DROPE (q, k or v rotated and stored where attention reads it: mv_forms.glsl).
// -DFLAGS (the *_flags forms, one column): ordered by stage flags instead of a barrier, X read
// into shared memory after the wait, as mul_mv_32.comp's.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "kquants/k_type.glsl"
#ifdef FLAGS
#include "flags.glsl"
#else
#define GK_PASSED
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const uint COLS = 1;
layout(constant_id = 5) const uint UNROLL = 1;  // groups a thread loads before using (3, 4: the fused forms')
// Bit 0 (AFFINE): each part of a group (k_common.glsl) as mul * dot(raw, X) + add * sum(X), the sum
// shared by the ROWS rows: one fma an element where scaling each quant took two; else values, then
// the dot. Bit 1 (SORTED): in each run of 64 groups (8 super-blocks) a thread takes the group
// sorted_group() gives, so that 32 neighbouring threads take sub-blocks 0-3 or 4-7 of 8 blocks and
// a Q4_K/Q5_K scale is unpacked one way per subgroup. Bit 2 (TRANSPOSED): the ROWS * COLS partial
// sums added across the subgroup in one transposing pass (sum_transposed) instead of one
// subgroupAdd each. Id 7 is the 32-element types' SPLIT (products.mv_spec); K-quant blocks are
// never split.
layout(constant_id = 7) const uint K_MODE = 1;
const bool AFFINE = (K_MODE & 1u) != 0u;
const bool SORTED = (K_MODE & 2u) != 0u;
const bool TRANSPOSED = (K_MODE & 4u) != 0u;

layout(set = 0, binding = 2) GK_PASSED readonly buffer X { vec4 x4[]; };
layout(set = 0, binding = 3) GK_PASSED buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n_out, n_in, col_source, accumulate; } p;

const uint RC = ROWS * COLS;
#include "mv_forms.glsl"

shared float partial[SUMS * gl_WorkGroupSize.x];

// vec4 xi of column col of X (x_row vec4s a column)
vec4 x_at(uint col, uint x_row, uint xi) {
#ifdef FLAGS
    return xs[xs_slot(xi)];  // COLS == 1
#else
    return x4[col * x_row + xi];
#endif
}

// Group g of the ROWS rows against the columns, part by part: the dots of X with the raw quants,
// then each scaled once and X's sum over the part times each row's offset added.
void affine_group(Group G[ROWS], uint g, uint col0, uint cols, uint x_row, inout float acc[ROWS][COLS],
                  inout float ss[COLS]) {
    const uint QUARTERS = 4u / KQ_PARTS;
    [[unroll]] for (uint part = 0; part < KQ_PARTS; part++) {
        float dots[ROWS][COLS];
        float x_sum[COLS];
        [[unroll]] for (uint c = 0; c < COLS; c++) {
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                dots[r][c] = 0.0;
            }
            x_sum[c] = 0.0;
        }
        [[unroll]] for (uint kk = 0; kk < QUARTERS; kk++) {
            uint k = part * QUARTERS + kk;
            vec4 lo[ROWS], hi[ROWS];
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                raw_quarter(G[r], k, lo[r], hi[r]);
            }
            uint xi = g * 8u + 2u * k;
            [[unroll]] for (uint c = 0; c < COLS; c++) {
                if (c < cols) {
                    vec4 xa = x_at(col0 + c, x_row, xi), xb = x_at(col0 + c, x_row, xi + 1u);
#ifdef NORM
                    norm_x(xa, xb, xi, xi + 1u, ss[c]);
#endif
                    vec4 both = xa + xb;
                    x_sum[c] += (both.x + both.y) + (both.z + both.w);
                    [[unroll]] for (uint r = 0; r < ROWS; r++) {
                        dots[r][c] = dot_acc(hi[r], xb, dot_acc(lo[r], xa, dots[r][c]));
                    }
                }
            }
        }
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            vec2 ma = part_affine(G[r], part);
            [[unroll]] for (uint c = 0; c < COLS; c++) {
                acc[r][c] = fma(ma.x, dots[r][c], fma(ma.y, x_sum[c], acc[r][c]));
            }
        }
    }
}

// The group a thread takes at place g of a row: g itself, or with SORTED place t of a whole run of 64
// goes to sub-block 4 * (t / 32) + t % 4 of block (t % 32) / 4 (the same groups, in another order).
uint sorted_group(uint g, uint n_groups) {
    if (!SORTED || (g | 63u) >= n_groups) {
        return g;
    }
    uint t = g & 63u;
    return (g & ~63u) + ((t & 31u) >> 2) * 8u + (t >> 5) * 4u + (t & 3u);
}

void load_round(out Group G[UNROLL][ROWS], uint first, uint out0, uint n_groups) {
    [[unroll]] for (uint j = 0; j < UNROLL; j++) {
        // past the end: reloaded, never used
        uint g = sorted_group(min(first + j * gl_WorkGroupSize.x, n_groups - 1u), n_groups);
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            G[j][r] = load_group(weight_row(out0, r), g);
        }
    }
}

// The subgroup's sums of the ROWS * COLS partial sums (RC a power of two, at most the subgroup's
// size, every lane active), sum c * ROWS + r left in lanes (c * ROWS + r) * spread onwards: each
// step swaps half the values still held with the lane `off` away and adds, so the first steps move
// RC / 2, RC / 4, ... values and the rest one: RC - 1 + log2(spread) shuffles, where one subgroupAdd
// a sum takes log2(subgroup size) each.
float sum_transposed(float acc[ROWS][COLS]) {
    float v[RC];
    [[unroll]] for (uint r = 0; r < ROWS; r++) {
        [[unroll]] for (uint c = 0; c < COLS; c++) {
            v[c * ROWS + r] = acc[r][c];
        }
    }
    uint off = gl_SubgroupSize / 2u;
    [[unroll]] for (uint half_n = RC / 2u; half_n > 0u; half_n /= 2u) {
        bool upper = (gl_SubgroupInvocationID & off) != 0u;  // keeps the upper half
        [[unroll]] for (uint i = 0; i < half_n; i++) {
            float keep = upper ? v[i + half_n] : v[i], give = upper ? v[i] : v[i + half_n];
            v[i] = keep + subgroupShuffleXor(give, off);
        }
        off /= 2u;
    }
    for (; off > 0u; off /= 2u) {
        v[0] += subgroupShuffleXor(v[0], off);
    }
    return v[0];
}

// Sum i of the workgroup from the subgroups' sums in shared memory.
float subgroups_sum(uint i) {
    float sum = 0.0;
    for (uint s = 0; s < gl_NumSubgroups; s++) {
        sum += partial[s * SUMS + i];
    }
    return sum;
}

#ifndef NORM
// Sum i (c * ROWS + r) of the workgroup into Y.
void store_sum(uint i, float sum, uint out0, uint col0, uint cols) {
    uint r = i % ROWS, c = i / ROWS, row = out0 + r;
    if (row < p.n_out && c < cols) {
        uint o = (col0 + c) * p.n_out + row;
        y[o] = p.accumulate != 0u ? y[o] + sum : sum;
    }
}
#endif

void main() {
    uint out0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * OUT_ROWS;
    uint col0 = gl_WorkGroupID.z * COLS;
    uint cols = cols_from(p.col_source, col0, COLS);
    if (out0 >= p.n_out || cols == 0u) {
#ifdef FLAGS
        signal_stage();
#endif
        return;  // the whole workgroup: nothing to write
    }
    kq_set_layout(weight_rows(), p.n_in);
    uint n_groups = kq_row_blocks * GROUPS_PER_BLOCK, x_row = p.n_in / 4u;

    float acc[ROWS][COLS];
    float ss[COLS];  // sums of squares of X (NORM)
    [[unroll]] for (uint c = 0; c < COLS; c++) {
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            acc[r][c] = 0.0;
        }
        ss[c] = 0.0;
    }
    const uint WG = gl_WorkGroupSize.x;
    // UNROLL of the thread's groups loaded before any is used: more bytes in flight at once
    Group G[UNROLL][ROWS];
#ifdef FLAGS
    load_round(G, gl_LocalInvocationID.x, out0, n_groups);  // weights: nothing to wait for
    await_stage();
    for (uint i = gl_LocalInvocationID.x; i < x_row; i += WG) {
        xs[xs_slot(i)] = x4[i];
    }
    barrier();
#endif
    for (uint first = gl_LocalInvocationID.x; first < n_groups; first += WG * UNROLL) {
#ifdef FLAGS
        if (first != gl_LocalInvocationID.x)  // the first round came before the wait
#endif
        load_round(G, first, out0, n_groups);
        [[unroll]] for (uint j = 0; j < UNROLL; j++) {
            uint g = first + j * WG;
            if (g >= n_groups) {
                break;
            }
            g = sorted_group(g, n_groups);
            if (AFFINE) {
                affine_group(G[j], g, col0, cols, x_row, acc, ss);
                continue;
            }
            [[unroll]] for (uint k = 0; k < 4u; k++) {
                vec4 lo[ROWS], hi[ROWS];
                [[unroll]] for (uint r = 0; r < ROWS; r++) {
                    dequant_quarter(G[j][r], k, lo[r], hi[r]);
                }
                uint xi = g * 8u + 2u * k;
                [[unroll]] for (uint c = 0; c < COLS; c++) {
                    if (c < cols) {
                        vec4 xa = x_at(col0 + c, x_row, xi), xb = x_at(col0 + c, x_row, xi + 1u);
#ifdef NORM
                        norm_x(xa, xb, xi, xi + 1u, ss[c]);
#endif
                        [[unroll]] for (uint r = 0; r < ROWS; r++) {
                            acc[r][c] += dot(lo[r], xa) + dot(hi[r], xb);
                        }
                    }
                }
            }
        }
    }

    // Sum the partial sums: within subgroups, then subgroup by subgroup in shared memory. Transposed,
    // lane l of a subgroup ends holding one sum (sum i at lanes i * spread .. (i + 1) * spread - 1).
    bool transposed = TRANSPOSED && (RC & (RC - 1u)) == 0u && RC <= gl_SubgroupSize &&
                      WG % gl_SubgroupSize == 0u;  // every lane there to swap with
    uint spread = transposed ? gl_SubgroupSize / RC : 1u;  // lanes that hold each sum
    float mine = 0.0;
    bool holder = transposed && gl_SubgroupInvocationID % spread == 0u;
    if (transposed) {
        mine = sum_transposed(acc);
    } else {
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            [[unroll]] for (uint c = 0; c < COLS; c++) {
                acc[r][c] = subgroupAdd(acc[r][c]);
            }
        }
    }
#ifdef NORM
    [[unroll]] for (uint c = 0; c < COLS; c++) {
        ss[c] = subgroupAdd(ss[c]);
    }
    bool shared_sums = true;  // the fused ends read several sums each
#else
    bool shared_sums = gl_NumSubgroups > 1u;
#endif
    if (shared_sums) {
        if (holder) {
            partial[gl_SubgroupID * SUMS + gl_SubgroupInvocationID / spread] = mine;
        }
        if (subgroupElect()) {
            if (!transposed) {  // else the holders wrote theirs
                [[unroll]] for (uint r = 0; r < ROWS; r++) {
                    [[unroll]] for (uint c = 0; c < COLS; c++) {
                        partial[gl_SubgroupID * SUMS + c * ROWS + r] = acc[r][c];
                    }
                }
            }
#ifdef NORM
            [[unroll]] for (uint c = 0; c < COLS; c++) {
                partial[gl_SubgroupID * SUMS + RC + c] = ss[c];
            }
#endif
        }
        barrier();
    }
#ifndef NORM
    if (!shared_sums && transposed) {
        if (holder) {  // one subgroup: its holders write the sums
            store_sum(gl_SubgroupInvocationID / spread, mine, out0, col0, cols);
        }
    } else {
        for (uint i = gl_LocalInvocationID.x; i < SUMS; i += gl_WorkGroupSize.x) {
            float sum = 0.0;
            if (shared_sums) {
                sum = subgroups_sum(i);
            } else {
                // one subgroup: every invocation holds every sum; pick this one without indexing by i
                [[unroll]] for (uint rr = 0; rr < ROWS; rr++) {
                    [[unroll]] for (uint cc = 0; cc < COLS; cc++) {
                        sum = (cc * ROWS + rr == i) ? acc[rr][cc] : sum;
                    }
                }
            }
            store_sum(i, sum, out0, col0, cols);
        }
    }
#else
    for (uint i = gl_LocalInvocationID.x; i < SUMS; i += gl_WorkGroupSize.x) {
        totals[i] = subgroups_sum(i);
    }
#endif
#ifdef ROPE
    barrier();
    for (uint i = gl_LocalInvocationID.x; i < OUT_ROWS / 2u * COLS; i += gl_WorkGroupSize.x) {
        uint r = 2u * (i % (OUT_ROWS / 2u)), c = i / (OUT_ROWS / 2u);
        if (out0 + r < p.n_out && c < cols) {  // n_out is even: so is out0 + r + 1 < n_out
            float sum_sq = totals[RC + c];
            store_rope_pair(col0 + c, out0 + r, normed_output(totals[c * ROWS + r], 0.0, sum_sq),
                            normed_output(totals[c * ROWS + r + 1u], 0.0, sum_sq));
        }
    }
#elif defined(NORM)
    barrier();
    for (uint i = gl_LocalInvocationID.x; i < OUT_ROWS * COLS; i += gl_WorkGroupSize.x) {
        uint r = i % OUT_ROWS, c = i / OUT_ROWS;
        if (out0 + r < p.n_out && c < cols) {
#ifdef GLU
            float up = totals[c * ROWS + r + OUT_ROWS];
#else
            float up = 0.0;  // unused
#endif
            float v = normed_output(totals[c * ROWS + r], up, totals[RC + c]);
            uint o = (col0 + c) * p.n_out + out0 + r;
            y[o] = p.accumulate != 0u ? y[o] + v : v;
        }
    }
#endif
#ifdef FLAGS
    signal_stage();
#endif
}
