// The merge of attention_split's partial results (attention_merge.comp, and attention.comp's
// -DMERGE_LAST): for one (head, token), the n_split partials in `scratch` from base on (per split:
// HEAD_DIM unnormalized output floats, then the split's max m and sum s of exp(score - m)) as one
// softmax: with M the largest m, out = sum_z o_z e^(m_z - M) / sum_z s_z e^(m_z - M); zeros where
// no split saw a slot. Written to o[dst + d] for d < HEAD_DIM, invocation lid of wg taking every
// wg-th d. The includer declares scratch[], o[] and HEAD_DIM.
#ifndef GK_ATTENTION_MERGE_GLSL
#define GK_ATTENTION_MERGE_GLSL

void merge_splits(uint base, uint dst, uint n_split, uint lid, uint wg) {
    const uint part = HEAD_DIM + 2;
    float big_m = GK_NEG_INF;
    for (uint z = 0; z < n_split; z++) big_m = max(big_m, scratch[base + z * part + HEAD_DIM]);
    float s = 0.0;
    for (uint z = 0; z < n_split; z++) {
        const float mz = scratch[base + z * part + HEAD_DIM];
        if (mz != GK_NEG_INF) s += scratch[base + z * part + HEAD_DIM + 1] * exp(mz - big_m);
    }
    const float inv = s > 0.0 ? 1.0 / s : 0.0;
    for (uint d = lid; d < HEAD_DIM; d += wg) {
        float acc = 0.0;
        for (uint z = 0; z < n_split; z++) {
            const float mz = scratch[base + z * part + HEAD_DIM];
            if (mz != GK_NEG_INF) acc += scratch[base + z * part + d] * exp(mz - big_m);
        }
        o[dst + d] = acc * inv;
    }
}

#endif
