#version 450
// Attention of one query head of one token over the KV cache, as the CPU's gk_attention: one
// workgroup per (head, token), the grid being (n_head, columns).
//
// The visible slots (kv_pos >= 0, causal by position, inside the window; [0, P.n_kv) or the
// token's [kv_lo, kv_hi)) are taken in tiles of WG slots, with an online softmax across tiles:
//   scores: invocation i takes slot base + i and computes its whole q.k (q in shared memory);
//   the tile's max (subgroups, then shared memory) rescales what was accumulated;
//   values: invocation (group, col) owns dims (2 col, 2 col + 1) and adds p_j v_j over every
//   GROUPS-th slot of the tile, U loads in flight before any is used; the groups are summed
//   at the end. A token that sees no slot gets zeros.
// -DSPLIT_K (attention_split): the grid has a third dimension, z taking the z-th of
// gl_NumWorkGroups.z chunks of the token's slots (whole tiles), and the workgroup writes its
// unnormalized output, max and sum to SCRATCH (binding 5) for attention_merge.comp, so that a
// decode step keeps more than n_head workgroups busy.
// -DSPLIT_K -DMERGE_LAST (attention_split_merged): and the last workgroup of a (head, token) to
// finish merges the parts itself (attention_merge.glsl), so that no second dispatch and barrier
// are needed: each counts itself done in COUNTERS (binding 6, one uint per (token, head), zero
// between passes: the merging workgroup puts it back) after its part is written, and the one
// that brings the count to gl_NumWorkGroups.z writes OUT (binding 7). SCRATCH and COUNTERS are
// coherent and each part is made visible (memoryBarrierBuffer) before it is counted. A part is at
// least MERGE_MIN_SLOTS slots: a token whose slots fit in one (a short context) is done by the
// first workgroup alone, which writes OUT as the unsplit kernel does (the others return at once),
// so that short contexts pay for no scratch and no merge (the unsplit kernel decoded a 6.7B Q4_0
// file 1.05x as fast as 8 parts on an H200, at 32 to 160 slots).
// -DSPLIT_K -DMERGE_LAST -DFLAGS (attention_split_merged_flags): ordered by stage flags instead of
// barriers (flags.glsl): each workgroup waits for the q, k and v products' stage first, and
// reads what they wrote through coherent declarations.
#include "common.glsl"
#ifdef FLAGS
#include "flags.glsl"
#else
#define GK_PASSED
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;        // >= HEAD_DIM / 2
layout(constant_id = 1) const uint HEAD_DIM = 128;  // even
layout(constant_id = 2) const uint F16 = 0;
layout(constant_id = 3) const uint N_HEAD = 1;
layout(constant_id = 4) const uint N_HEAD_KV = 1;
layout(constant_id = 5) const uint WINDOW = 0;      // 0: none
layout(constant_id = 6) const uint KV_RANGE = 0;    // 1: slots [P.kv_lo[t], P.kv_hi[t])
const uint MERGE_MIN_SLOTS = 4u * WG;  // the fewest slots a part of attention_split_merged takes
#include "ops.glsl"

layout(set = 0, binding = 1) GK_PASSED readonly buffer Q { float q[]; };
layout(set = 0, binding = 2) GK_PASSED readonly buffer K { uint k[]; };
layout(set = 0, binding = 2) GK_PASSED readonly buffer K4 { uvec4 k4[]; };  // the same words, 16 bytes at a time
layout(set = 0, binding = 3) GK_PASSED readonly buffer V { uint v[]; };
layout(set = 0, binding = 4) readonly buffer KvPos { int kv_pos[]; };
#ifdef MERGE_LAST
layout(set = 0, binding = 5) coherent buffer Scratch { float scratch[]; };
layout(set = 0, binding = 6) coherent buffer Counters { uint counters[]; };
layout(set = 0, binding = 7) GK_PASSED writeonly buffer Out { float o[]; };
#include "attention_merge.glsl"
shared bool merge_here;
#elif defined(SPLIT_K)
layout(set = 0, binding = 5) writeonly buffer Scratch { float scratch[]; };
#else
layout(set = 0, binding = 5) writeonly buffer Out { float o[]; };
#endif
layout(push_constant) uniform Push { float scale; float softcap; } pc;

const uint ROW_WORDS = F16 != 0 ? HEAD_DIM / 2 : HEAD_DIM;  // one head's K or V row
const uint VEC = F16 != 0 ? 8 : 4;                          // elements in a uvec4
const uint COLS = HEAD_DIM / 2;
const uint GROUPS = WG / COLS;
const uint U = 8;

shared float qs[HEAD_DIM];
shared float ps[WG];          // the tile's p_j
shared float red[2 * WG];     // subgroup partials, two buffers alternating by tile
shared vec2 acc[WG];          // each group's output pairs, at the end

vec4 q4(uint e) { return vec4(qs[e], qs[e + 1], qs[e + 2], qs[e + 3]); }

// q . k for the K row starting at word w
float dot_qk(uint w) {
    float s = 0.0;
    if (HEAD_DIM % VEC == 0) {  // rows start on 16 bytes
        for (uint c = 0; c < HEAD_DIM / VEC; c++) {
            const uvec4 x = k4[w / 4 + c];
            if (F16 != 0)
                s += dot(vec4(unpackHalf2x16(x.x), unpackHalf2x16(x.y)), q4(8 * c)) +
                     dot(vec4(unpackHalf2x16(x.z), unpackHalf2x16(x.w)), q4(8 * c + 4));
            else
                s += dot(uintBitsToFloat(x), q4(4 * c));
        }
    } else {
        for (uint c = 0; c < HEAD_DIM / 2; c++) {
            const vec2 x = F16 != 0 ? unpackHalf2x16(k[w + c]) : vec2(uintBitsToFloat(k[w + 2 * c]), uintBitsToFloat(k[w + 2 * c + 1]));
            s += x.x * qs[2 * c] + x.y * qs[2 * c + 1];
        }
    }
    return s;
}

// dims (2 c, 2 c + 1) of the V row starting at word w
vec2 v_pair(uint w, uint c) {
    return F16 != 0 ? unpackHalf2x16(v[w + c]) : vec2(uintBitsToFloat(v[w + 2 * c]), uintBitsToFloat(v[w + 2 * c + 1]));
}

bool visible(uint j, int qp) {
    const int kp = kv_pos[j];
    return kp >= 0 && kp <= qp && (WINDOW == 0 || kp > qp - int(WINDOW));
}

// sum of p_j v_j over this invocation's slots of the tile [base, base + n): U rows loaded (those
// with p_j != 0: no NaN from an empty slot's garbage) before any is added
vec2 tile_values(uint base, uint n, uint kvh, uint col, uint group) {
    vec2 sum = vec2(0.0);
    for (uint i0 = group; i0 < n; i0 += GROUPS * U) {
        float pw[U];
        vec2 val[U];
        for (uint u = 0; u < U; u++) {
            const uint i = i0 + u * GROUPS;
            pw[u] = i < n ? ps[i] : 0.0;
            val[u] = vec2(0.0);
            if (pw[u] != 0.0) val[u] = v_pair(((base + i) * N_HEAD_KV + kvh) * ROW_WORDS, col);
        }
        for (uint u = 0; u < U; u++) sum += pw[u] * val[u];
    }
    return sum;
}

#if !defined(SPLIT_K) || defined(MERGE_LAST)
// dims (2 lid, 2 lid + 1) of the output at o[at], normalized by the sum of p
void write_out(uint at, vec2 sum, float s) {
    const float inv = s > 0.0 ? 1.0 / s : 0.0;
    o[at] = sum.x * inv;
    o[at + 1] = sum.y * inv;
}
#endif

#ifdef SPLIT_K
// this part's unnormalized output pair, and (lid 0) its max and sum, for the merge
void write_part(uint t, uint h, uint lid, vec2 sum, float m, float s) {
    const uint part = ((t * N_HEAD + h) * gl_NumWorkGroups.z + gl_WorkGroupID.z) * (HEAD_DIM + 2);
    scratch[part + 2 * lid] = sum.x;
    scratch[part + 2 * lid + 1] = sum.y;
    if (lid == 0) {
        scratch[part + HEAD_DIM] = m;
        scratch[part + HEAD_DIM + 1] = s;
    }
}
#endif

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, lid = gl_LocalInvocationID.x;
    if (t >= P.n_tokens) {  // the whole workgroup
#ifdef FLAGS
        signal_stage();
#endif
        return;
    }
#ifdef FLAGS
    await_stage();
#endif
    const uint kvh = h / (N_HEAD / N_HEAD_KV);
    const int qp = param(PARAM_POS, t);
    uint lo = KV_RANGE != 0 ? uint(param(PARAM_KV_LO, t)) : 0u;
    uint hi = KV_RANGE != 0 ? max(uint(param(PARAM_KV_HI, t)), lo) : P.n_kv;
#ifdef SPLIT_K
    uint per = ((hi - lo + gl_NumWorkGroups.z - 1) / gl_NumWorkGroups.z + WG - 1) / WG * WG;
#ifdef MERGE_LAST
    per = max(per, MERGE_MIN_SLOTS);
    const bool alone = hi - lo <= per;  // the same in every part of (h, t)
    if (alone && gl_WorkGroupID.z != 0u) {  // the whole workgroup
#ifdef FLAGS
        signal_stage();
#endif
        return;
    }
#endif
    lo = min(lo + gl_WorkGroupID.z * per, hi);
    hi = min(lo + per, hi);
#endif
    const uint qbase = (t * N_HEAD + h) * HEAD_DIM;
    for (uint d = lid; d < HEAD_DIM; d += WG) qs[d] = q[qbase + d];
    barrier();

    const uint col = lid % COLS, group = lid / COLS;
    vec2 out_pair = vec2(0.0);
    float m = GK_NEG_INF;  // the running max, the same in every invocation
    float s_part = 0.0;    // this invocation's share of the sum of p
    uint buf = 0;
    for (uint base = lo; base < hi; base += WG) {
        const uint j = base + lid;
        float sc = GK_NEG_INF;
        if (j < hi && visible(j, qp)) {
            sc = dot_qk((j * N_HEAD_KV + kvh) * ROW_WORDS) * pc.scale;
            if (pc.softcap > 0.0) sc = pc.softcap * gk_tanh(sc / pc.softcap);
        }
        const float sg = subgroupMax(sc);
        if (subgroupElect()) red[buf + gl_SubgroupID] = sg;
        barrier();
        float tile_max = GK_NEG_INF;
        for (uint i = 0; i < gl_NumSubgroups; i++) tile_max = max(tile_max, red[buf + i]);
        buf = WG - buf;
        if (tile_max == GK_NEG_INF) continue;  // nothing visible here (uniform)

        const float m_new = max(m, tile_max);
        const float alpha = m == GK_NEG_INF ? 0.0 : exp(m - m_new);
        m = m_new;
        const float p = sc == GK_NEG_INF ? 0.0 : exp(sc - m_new);
        s_part = s_part * alpha + p;
        ps[lid] = p;
        barrier();
        out_pair *= alpha;
        if (group < GROUPS) out_pair += tile_values(base, min(WG, hi - base), kvh, col, group);
    }

    // red[buf] was last read two tiles ago, before the last tile's first barrier
    const float sg = subgroupAdd(s_part);
    if (subgroupElect()) red[buf + gl_SubgroupID] = sg;
    acc[lid] = out_pair;
    barrier();
    if (lid < COLS) {
        float s = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; i++) s += red[buf + i];
        vec2 sum = vec2(0.0);
        for (uint r = 0; r < GROUPS; r++) sum += acc[r * COLS + lid];
#if defined(MERGE_LAST)
        if (alone) {
            write_out(qbase + 2 * lid, sum, s);
        } else {
            write_part(t, h, lid, sum, m, s);
        }
#elif defined(SPLIT_K)
        write_part(t, h, lid, sum, m, s);
#else
        write_out(qbase + 2 * lid, sum, s);
#endif
    }
#ifdef MERGE_LAST
    if (alone) {  // OUT is written: no part to count, nothing to merge (the whole workgroup)
#ifdef FLAGS
        signal_stage();
#endif
        return;
    }
    memoryBarrierBuffer();  // this part reaches device memory before it is counted
    barrier();
    const uint counter = t * N_HEAD + h;
    if (lid == 0) merge_here = atomicAdd(counters[counter], 1u) == gl_NumWorkGroups.z - 1u;
    barrier();
    if (!merge_here) {  // the whole workgroup
#ifdef FLAGS
        signal_stage();
#endif
        return;
    }
    memoryBarrierBuffer();
    merge_splits((t * N_HEAD + h) * gl_NumWorkGroups.z * (HEAD_DIM + 2), qbase, gl_NumWorkGroups.z, lid, WG);
    if (lid == 0) counters[counter] = 0u;  // for the next pass
#endif
#ifdef FLAGS
    signal_stage();
#endif
}
