"""The decoder's ops on Vulkan other than matrix products (products.py): norms, RoPE, the KV cache,
attention, softmax, element-wise ops. Each function returns the Dispatch for one use; its
docstring says what it binds after the parameter buffer (binding 0, shaders/common.glsl).

Shapes are for up to max_cols columns (tokens, or logit rows): the grid covers max_cols and the
shader reads the real count from the parameter buffer (n_cols(col_source)). Every buffer is
float32 unless said; KV caches are uint32 words holding either float32 bits or pairs of halves
(element e in word e / 2, the low half first: the bytes of the CPU cache's float16 array).
"""
from __future__ import annotations

from gpt4all_core.backend.vulkan.context import Caps, Dispatch

COLS_TOKENS, COLS_LOGITS = 0, 1


def rms_norm(caps: Caps, dim: int, rows_per_col: int, col_source: int, eps: float, max_cols: int) -> Dispatch:
    """1 X [cols * rows_per_col, dim], 2 W [dim], 3 Y like X (Y may be the same buffer as X):
    y = x / sqrt(mean(x^2) + eps) * w per row. rows_per_col > 1 normalizes each head."""
    raise NotImplementedError


def layer_norm(caps: Caps, dim: int, col_source: int, eps: float, max_cols: int) -> Dispatch:
    """1 X [cols, dim], 2 W [dim], 3 B [dim], 4 Y [cols, dim]: (x - mean) / sqrt(var + eps) * w + b."""
    raise NotImplementedError


def rope(caps: Caps, n_head: int, head_dim: int, rope: dict, max_cols: int) -> Dispatch:
    """1 X [cols, n_head, head_dim] rotated in place, token t at position P.pos[t]; 2 FF, the
    freq_factors [n_rot / 2] (any one-element buffer when rope has none). rope: the CPU
    decoder's dict (n_rot, mode "normal"/"neox", freq_base, freq_scale, freq_factors,
    ext_factor, attn_factor, beta_fast, beta_slow, n_ctx_orig), same semantics as gk_rope."""
    raise NotImplementedError


def rope_cache(caps: Caps, n_head_kv: int, head_dim: int, f16: bool, rope: dict, first_slot: int, count: int,
               delta: int) -> Dispatch:
    """1 CACHE (uint words, [n_ctx, n_head_kv, head_dim]), 2 FF: rotates the keys of slots
    [first_slot, first_slot + count) in place by delta positions (context erase; F16 keys are
    rotated in float and rounded back, as the CPU does)."""
    raise NotImplementedError


def copy_words(caps: Caps, src_offset: int, dst_offset: int, n_words: int) -> Dispatch:
    """1 SRC (uint), 2 DST (uint): dst[dst_offset + i] = src[src_offset + i] for i < n_words."""
    raise NotImplementedError


def kv_store(caps: Caps, kv_dim: int, f16: bool, max_cols: int) -> Dispatch:
    """1 SRC [cols, kv_dim], 2 CACHE (uint words): row t goes to cache slot P.slots[t]."""
    raise NotImplementedError


def attention(caps: Caps, n_head: int, n_head_kv: int, head_dim: int, f16: bool, window: int, scale: float,
              softcap: float, use_kv_range: bool, max_cols: int) -> Dispatch:
    """1 Q [cols, n_head, head_dim], 2 K cache, 3 V cache (uint words), 4 KV_POS (int [n_ctx],
    negative: empty slot), 5 OUT [cols, n_head, head_dim]. Over slots [0, P.n_kv), or each
    token's [P.kv_lo[t], P.kv_hi[t]) when use_kv_range; causal by position, window and softcap
    as gk_attention (kernels/ops.h). A token that sees no slot gets zeros."""
    raise NotImplementedError


def softmax(caps: Caps, n: int, rows: int, scale: float) -> Dispatch:
    """1 X [rows, n], 2 Y [rows, n]: softmax(x * scale) per row (an op for tests and users; the
    attention shader has its own)."""
    raise NotImplementedError


def add(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 X [cols, n] (in and out), 2 B [cols, n]: x += b (the residual add)."""
    raise NotImplementedError


def mul(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 X [cols, n] (in and out), 2 B [cols, n]: x *= b."""
    raise NotImplementedError


def add_bias(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 X [cols, n] (in and out), 2 BIAS [n]: each row += bias."""
    raise NotImplementedError


def swiglu(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 G [cols, n] (in and out), 2 U [cols, n]: g = silu(g) * u."""
    raise NotImplementedError


def gelu_mul(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 G [cols, n] (in and out), 2 U [cols, n]: g = gelu(g) * u, with the CPU's gk_gelu."""
    raise NotImplementedError


def scale(caps: Caps, n: int, col_source: int, s: float, max_cols: int) -> Dispatch:
    """1 X [cols, n] in place: x *= s."""
    raise NotImplementedError


def softcap(caps: Caps, n: int, col_source: int, cap: float, max_cols: int) -> Dispatch:
    """1 X [cols, n] in place: x = cap * tanh(x / cap)."""
    raise NotImplementedError


def gather_rows(caps: Caps, n: int, max_cols: int) -> Dispatch:
    """1 X [tokens, n], 2 Y [logit rows, n]: Y[i] = X[P.logit_rows[i]] for i < P.n_logits."""
    raise NotImplementedError
