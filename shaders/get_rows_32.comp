#version 450
// Y[t] = W row P.tokens[t], dequantized, times scale (the token embedding lookup). Grid x: the
// row's pieces (8 values each, types_32.glsl), y: tokens (those past P.n_tokens do nothing). An
// id outside [0, n_rows) gives a row of zeros rather than a read past the table.
#include "common.glsl"
#include "types_32.glsl"

layout(local_size_x_id = 0) in;
layout(set = 0, binding = 2) writeonly buffer Yf { float Y[]; };
layout(set = 0, binding = 2) writeonly buffer Yv { vec4 Y4[]; };
layout(push_constant) uniform Push { uint n_in; uint n_rows; float scale; } p;

void store4(uint t, uint k, vec4 v) {
    if ((p.n_in & 3u) == 0u && k + 4u <= p.n_in) {
        Y4[(t * p.n_in + k) / 4u] = v;
        return;
    }
    for (uint i = 0u; i < 4u; ++i) {  // float rows: the zero padding past n_in is not stored
        if (k + i < p.n_in) {
            Y[t * p.n_in + k + i] = v[i];
        }
    }
}

void main() {
    uint t = gl_WorkGroupID.y, i = gl_GlobalInvocationID.x;
    uint nb = (p.n_in + BLOCK - 1u) / BLOCK;
    if (t >= P.n_tokens || i >= nb * PIECES_PER_BLOCK) {
        return;
    }
    uint block = i / PIECES_PER_BLOCK, slot = i % PIECES_PER_BLOCK, u = slot / PIECES;
    int id = param(PARAM_TOKEN, t);
    vec4 a = vec4(0.0), b = vec4(0.0);
    uint oa = slot * 8u, ob = oa + 4u;  // where a zero row's pieces go (any 4 pieces cover a block)
    if (id >= 0 && uint(id) < p.n_rows) {
        Unit un = load_unit(uint(id) * nb + block, u, p.n_rows * nb);
        dequant_piece(un, u, slot % PIECES, a, b, oa, ob);
    }
    store4(t, block * BLOCK + oa, a * p.scale);
    store4(t, block * BLOCK + ob, b * p.scale);
}
