"""The decoder's ops on Vulkan other than matrix products (products.py): norms, RoPE, the KV cache,
attention, softmax, element-wise ops. Each function returns the Dispatch for one use; its
docstring says what it binds after the parameter buffer (binding 0, shaders/common.glsl).

Shapes are for up to max_cols columns (tokens, or logit rows): the grid covers max_cols and the
shader reads the real count from the parameter buffer (n_cols(col_source)). Every buffer is
float32 unless said; KV caches are uint32 words holding either float32 bits or pairs of halves
(element e in word e / 2, the low half first: the bytes of the CPU cache's float16 array).
"""
from __future__ import annotations

import math

import numpy as np

from gpt4all_core.backend.vulkan.context import Caps, Dispatch, ceil_div, push_words

COLS_TOKENS, COLS_LOGITS = 0, 1
MAX_GROUPS = 65535  # per grid dimension: Vulkan's guaranteed minimum


# ---- sizes ----

def _cols(max_cols: int) -> int:
    if not 1 <= max_cols <= MAX_GROUPS:
        raise ValueError(f"max_cols = {max_cols} must lie in [1, {MAX_GROUPS}]")
    return max_cols


def _groups(n: int, per_group: int) -> int:
    """Workgroups covering n items (the shaders stride by the grid past MAX_GROUPS)."""
    return max(1, min(ceil_div(n, per_group), MAX_GROUPS))


def _row_wg(caps: Caps, n: int, most: int = 256) -> int:
    """A workgroup size for one row of n items: a power of two from the subgroup size to most."""
    wg = 1 << max(0, (n - 1).bit_length())
    return max(min(caps.subgroup_size, most), min(wg, most, caps.max_workgroup_invocations))


ELEMENTWISE_WG = 256


# ---- norms ----

def rms_norm(caps: Caps, dim: int, rows_per_col: int, col_source: int, eps: float, max_cols: int) -> Dispatch:
    """1 X [cols * rows_per_col, dim], 2 W [dim], 3 Y like X (Y may be the same buffer as X):
    y = x / sqrt(mean(x^2) + eps) * w per row. rows_per_col > 1 normalizes each head."""
    if not 1 <= rows_per_col <= MAX_GROUPS:
        raise ValueError(f"rows_per_col = {rows_per_col} must lie in [1, {MAX_GROUPS}]")
    # up to 1024 invocations: a decode step's norm is one workgroup, latency-bound (12 us for 4096
    # values at 256 on an H100)
    return Dispatch("rms_norm", (rows_per_col, _cols(max_cols), 1), (_row_wg(caps, dim, 1024),),
                    push_words(dim, col_source, float(eps)))


def layer_norm(caps: Caps, dim: int, col_source: int, eps: float, max_cols: int) -> Dispatch:
    """1 X [cols, dim], 2 W [dim], 3 B [dim], 4 Y [cols, dim] (Y may be X):
    (x - mean) / sqrt(var + eps) * w + b."""
    return Dispatch("layer_norm", (1, _cols(max_cols), 1), (_row_wg(caps, dim, 1024),),
                    push_words(dim, col_source, float(eps)))


# ---- RoPE ----

def _rope_settings(rope: dict, head_dim: int) -> dict:
    """The rope dict with the CPU decoder's defaults, its floats rounded to float32 as the C
    struct gk_rope_params holds them."""
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    n_rot = int(rope.get("n_rot", head_dim))
    if n_rot < 0 or n_rot % 2 or n_rot > head_dim:
        raise ValueError(f"rope n_rot must be even and at most head_dim ({head_dim}), not {n_rot}")
    mode = rope.get("mode", "normal")
    if mode not in ("normal", "neox"):
        raise ValueError(f"rope mode must be 'normal' or 'neox', not {mode!r}")
    s = {"n_rot": n_rot, "neox": mode == "neox", "freq_base": f32(rope.get("freq_base", 10000.0)),
         "freq_scale": f32(rope.get("freq_scale", 1.0)), "ext_factor": f32(rope.get("ext_factor", 0.0)),
         "attn_factor": f32(rope.get("attn_factor", 1.0)), "beta_fast": f32(rope.get("beta_fast", 32.0)),
         "beta_slow": f32(rope.get("beta_slow", 1.0)), "n_ctx_orig": int(rope.get("n_ctx_orig", 0)),
         "freq_factors": rope.get("freq_factors")}
    if not (s["freq_base"] > 0 and s["freq_scale"] > 0):
        raise ValueError("rope freq_base and freq_scale must be positive")
    if s["ext_factor"] != 0 and s["n_ctx_orig"] <= 0:
        raise ValueError("rope n_ctx_orig (the training context length) must be positive when ext_factor != 0")
    return s


def _yarn_corr_dims(s: dict) -> tuple[float, float]:
    """ggml_rope_yarn_corr_dims in float32 as gk_rope computes them: the dims below which the
    angle stays unscaled and above which it is fully interpolated."""
    f = np.float32

    def corr_dim(n_turns):
        return f(s["n_rot"]) * np.log(f(s["n_ctx_orig"]) / (f(n_turns) * f(2.0) * f(math.pi))) / (
            f(2.0) * np.log(f(s["freq_base"])))
    lo, hi = np.floor(corr_dim(s["beta_fast"])), np.ceil(corr_dim(s["beta_slow"]))
    return float(max(lo, f(0))), float(min(hi, f(s["n_rot"] - 1)))


def rope_freqs(rope: dict, head_dim: int) -> np.ndarray:
    """What rope() and rope_cache() bind at 2: float32 [n_rot / 2, 4], per rotated pair i the
    angle per position in turns, freq_base^(-2i/n_rot) * freq_scale / freq_factors[i] blended
    by YaRN exactly as gk_rope does (in double), split into a + b + c with a and b of at most 12
    significant bits each (shaders/rope.comp says why); the 4th float is unused. Upload once
    per rope dict (Gemma 3's local and global blocks differ)."""
    s = _rope_settings(rope, head_dim)
    half = s["n_rot"] // 2
    i = np.arange(half, dtype=np.float64)
    freq = np.power(float(s["freq_base"]), -2.0 * i / s["n_rot"])
    if s["freq_factors"] is not None:
        ff = np.asarray(s["freq_factors"], np.float32).reshape(-1)
        if ff.shape != (half,):
            raise ValueError(f"rope freq_factors must hold n_rot / 2 = {half} values, not {ff.shape[0]}")
        freq = freq / ff.astype(np.float64)
    ramp = np.zeros(half)  # weight of the unscaled angle
    if s["ext_factor"] != 0:
        c0, c1 = _yarn_corr_dims(s)
        y = (i - c0) / (c1 - c0 if c1 - c0 > np.float32(0.001) else 0.001)
        ramp = (1.0 - np.clip(y, 0.0, 1.0)) * s["ext_factor"]
    turns = freq * (s["freq_scale"] * (1.0 - ramp) + ramp) / (2.0 * math.pi)
    hi = turns.astype(np.float32)
    a = (hi.view(np.uint32) & np.uint32(0xFFFFF000)).view(np.float32)
    table = np.zeros((half, 4), np.float32)
    table[:, 0], table[:, 1] = a, hi - a
    table[:, 2] = (turns - hi.astype(np.float64)).astype(np.float32)
    return table


def _rope_mscale(s: dict) -> float:
    """cos and sin are multiplied by attn_factor, and by YaRN's magnitude correction."""
    m = s["attn_factor"]
    if s["ext_factor"] != 0:
        m *= 1.0 + 0.1 * math.log(1.0 / s["freq_scale"])
    return m


def rope_rotation(rope: dict, head_dim: int) -> tuple[int, bool, float]:
    """(n_rot, neox, mscale): how rope() rotates a head, for the q and k products that rotate
    their own outputs (products.RopeOut)."""
    s = _rope_settings(rope, head_dim)
    return s["n_rot"], s["neox"], float(_rope_mscale(s))


def rope(caps: Caps, n_head: int, head_dim: int, rope: dict, max_cols: int) -> Dispatch:
    """1 X [cols, n_head, head_dim] rotated in place, token t at position P.pos[t] (|pos| < 2^24);
    2 FREQS, the table rope_freqs(rope, head_dim). rope: the CPU decoder's dict (n_rot, mode
    "normal"/"neox", freq_base, freq_scale, freq_factors, ext_factor, attn_factor, beta_fast,
    beta_slow, n_ctx_orig), same semantics as gk_rope."""
    s = _rope_settings(rope, head_dim)
    half = max(1, s["n_rot"] // 2)
    return Dispatch("rope", (n_head, _cols(max_cols), 1),
                    (_row_wg(caps, half, 128), head_dim, s["n_rot"], int(s["neox"])),
                    push_words(float(_rope_mscale(s))))


def rope_store(caps: Caps, n_head_kv: int, head_dim: int, f16: bool, rope: dict, max_cols: int) -> Dispatch:
    """1 K [cols, n_head_kv, head_dim] (read only), 2 FREQS (rope_freqs(rope, head_dim)), 3 CACHE
    (uint words): rope then kv_store in one dispatch, token t's rotated keys into slot P.slots[t],
    bit for bit what the two give. F16 needs an even head_dim."""
    s = _rope_settings(rope, head_dim)
    if f16 and head_dim % 2:
        raise ValueError(f"rope_store: an F16 cache needs an even head_dim, not {head_dim}")
    half = max(1, s["n_rot"] // 2)
    return Dispatch("rope_store", (n_head_kv, _cols(max_cols), 1),
                    (_row_wg(caps, half, 128), head_dim, s["n_rot"], int(s["neox"]), int(bool(f16))),
                    push_words(float(_rope_mscale(s))))


def rope_cache(caps: Caps, n_head_kv: int, head_dim: int, f16: bool, rope: dict, first_slot: int, count: int,
               delta: int) -> Dispatch:
    """1 CACHE (uint words, [n_ctx, n_head_kv, head_dim]), 2 FREQS (rope_freqs(rope, head_dim)):
    rotates the keys of slots [first_slot, first_slot + count) in place by delta positions
    (context erase; F16 keys are rotated in float and rounded back, as the CPU does)."""
    s = _rope_settings(rope, head_dim)
    if first_slot < 0 or count < 0:
        raise ValueError(f"rope_cache: first_slot = {first_slot} and count = {count} must not be negative")
    half = max(1, s["n_rot"] // 2)
    return Dispatch("rope_cache", (n_head_kv, _groups(count, 1), 1),
                    (_row_wg(caps, half, 128), head_dim, s["n_rot"], int(s["neox"]), int(bool(f16))),
                    push_words(float(_rope_mscale(s)), first_slot, count, delta))


# ---- the KV cache ----

def copy_words(caps: Caps, src_offset: int, dst_offset: int, n_words: int, same_buffer: bool = True) -> Dispatch:
    """1 SRC (uint), 2 DST (uint): dst[dst_offset + i] = src[src_offset + i] for i < n_words.
    With same_buffer (SRC and DST bound to one buffer) and overlapping ranges it is a memmove,
    done by one workgroup in order (slow: ~chunk per barrier); otherwise the whole grid copies."""
    if min(src_offset, dst_offset, n_words) < 0:
        raise ValueError("copy_words: offsets and n_words must not be negative")
    d = dst_offset - src_offset
    order = 0 if not same_buffer or d == 0 or abs(d) >= n_words else (1 if d < 0 else 2)
    if order:
        wg = min(1024, caps.max_workgroup_invocations)
        return Dispatch("copy_words", (1, 1, 1), (wg, order), push_words(src_offset, dst_offset, n_words))
    return Dispatch("copy_words", (_groups(n_words, ELEMENTWISE_WG), 1, 1), (ELEMENTWISE_WG, 0),
                    push_words(src_offset, dst_offset, n_words))


PREFETCH_PER = 4  # uvec4s an invocation of shaders/prefetch.comp reads


def prefetch(caps: Caps, offset4: int, n4: int) -> Dispatch:
    """1 SRC (uvec4s, read), 2 SINK (uint, >= 256 words; written only if the data hits a constant):
    reads src[offset4, offset4 + n4) and keeps nothing, so that a later dispatch finds it in L2."""
    if min(offset4, n4) < 0:
        raise ValueError("prefetch: offset4 and n4 must not be negative")
    return Dispatch("prefetch", (_groups(n4, ELEMENTWISE_WG * PREFETCH_PER), 1, 1), (ELEMENTWISE_WG,),
                    push_words(offset4, n4))


def kv_store(caps: Caps, kv_dim: int, f16: bool, max_cols: int) -> Dispatch:
    """1 SRC [cols, kv_dim], 2 CACHE (uint words): row t goes to cache slot P.slots[t] (F16:
    rounded to nearest even as the CPU's gk_fp32_to_fp16; kv_dim even)."""
    if f16 and kv_dim % 2:
        raise ValueError(f"kv_store: an F16 cache needs an even kv_dim, not {kv_dim}")
    words = kv_dim // 2 if f16 else kv_dim
    return Dispatch("kv_store", (_groups(words, ELEMENTWISE_WG), _cols(max_cols), 1),
                    (ELEMENTWISE_WG, int(bool(f16))), push_words(kv_dim))


# ---- attention and softmax ----

def _attention_spec(caps: Caps, n_head: int, n_head_kv: int, head_dim: int, f16: bool, window: int, softcap: float,
                    use_kv_range: bool, wg: int) -> tuple[int, ...]:
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"attention: head_dim must be even, not {head_dim}")
    if n_head_kv < 1 or n_head % n_head_kv:
        raise ValueError(f"attention: n_head ({n_head}) must be a multiple of n_head_kv ({n_head_kv})")
    if window < 0 or softcap < 0:
        raise ValueError(f"attention: window ({window}) and softcap ({softcap}) must not be negative")
    # a slot per invocation for the scores, at least an invocation per pair of dims for the values
    wg = max(wg, ceil_div(head_dim // 2, caps.subgroup_size) * caps.subgroup_size)
    if wg > caps.max_workgroup_invocations:
        raise ValueError(f"attention: head_dim {head_dim} needs {wg} invocations per workgroup; "
                         f"the device allows {caps.max_workgroup_invocations}")
    return (wg, head_dim, int(bool(f16)), n_head, n_head_kv, window, int(bool(use_kv_range)))


def attention(caps: Caps, n_head: int, n_head_kv: int, head_dim: int, f16: bool, window: int, scale: float,
              softcap: float, use_kv_range: bool, max_cols: int) -> Dispatch:
    """1 Q [cols, n_head, head_dim], 2 K cache, 3 V cache (uint words), 4 KV_POS (int [n_ctx],
    negative: empty slot), 5 OUT [cols, n_head, head_dim]. Over slots [0, P.n_kv), or each
    token's [P.kv_lo[t], P.kv_hi[t]) when use_kv_range; causal by position, window and softcap
    as gk_attention (kernels/ops.h). A token that sees no slot gets zeros. One workgroup per
    (head, token): for decode on a large GPU see attention_split."""
    spec = _attention_spec(caps, n_head, n_head_kv, head_dim, f16, window, softcap, use_kv_range, 128)
    return Dispatch("attention", (n_head, _cols(max_cols), 1), spec, push_words(float(scale), float(softcap)))


def attention_scratch_floats(n_head: int, head_dim: int, max_cols: int, n_split: int) -> int:
    """The size of attention_split's SCRATCH buffer (float32)."""
    return max_cols * n_head * n_split * (head_dim + 2)


def attention_split(caps: Caps, n_head: int, n_head_kv: int, head_dim: int, f16: bool, window: int, scale: float,
                    softcap: float, use_kv_range: bool, max_cols: int, n_split: int) -> tuple[Dispatch, Dispatch]:
    """attention() in two dispatches, for few tokens over a long cache: each token's slots are cut
    into n_split chunks (whole tiles of the workgroup size; chunks past the slots do nothing), one
    workgroup each, so a decode step runs n_head * n_split workgroups instead of n_head.
    First: 1 Q, 2 K, 3 V, 4 KV_POS as attention(), 5 SCRATCH (float
    [attention_scratch_floats(...)]); then, after a barrier: 1 SCRATCH, 2 OUT. Same result as
    attention() up to float rounding."""
    if not 1 <= n_split <= MAX_GROUPS:
        raise ValueError(f"attention_split: n_split = {n_split} must lie in [1, {MAX_GROUPS}]")
    spec = _attention_spec(caps, n_head, n_head_kv, head_dim, f16, window, softcap, use_kv_range, 128)
    first = Dispatch("attention_split", (n_head, _cols(max_cols), n_split), spec, push_words(float(scale), float(softcap)))
    merge = Dispatch("attention_merge", (n_head, max_cols, 1), (_row_wg(caps, head_dim, 128), head_dim, n_split))
    return first, merge


def attention_split_merged(caps: Caps, n_head: int, n_head_kv: int, head_dim: int, f16: bool, window: int,
                           scale: float, softcap: float, use_kv_range: bool, max_cols: int, n_split: int) -> Dispatch:
    """attention_split's two dispatches as one: the last workgroup of each (head, token) to finish
    merges the parts. 1 Q, 2 K, 3 V, 4 KV_POS, 5 SCRATCH as attention_split's first, 6 COUNTERS
    (uint [max_cols * n_head], zeros before the first pass; every pass leaves them zero), 7 OUT."""
    first, _ = attention_split(caps, n_head, n_head_kv, head_dim, f16, window, scale, softcap, use_kv_range,
                               max_cols, n_split)
    return Dispatch("attention_split_merged", first.groups, first.spec, first.push)


def softmax(caps: Caps, n: int, rows: int, scale: float) -> Dispatch:
    """1 X [rows, n], 2 Y [rows, n]: softmax(x * scale) per row (an op for tests and users; the
    attention shader has its own)."""
    x = _groups(rows, 1)
    return Dispatch("softmax", (x, max(1, ceil_div(rows, x)), 1), (_row_wg(caps, n),),
                    push_words(n, rows, float(scale)))


# ---- element-wise ops ----

def _elementwise(shader: str, n: int, col_source: int, max_cols: int, s: float = 0.0) -> Dispatch:
    return Dispatch(shader, (_groups(n, ELEMENTWISE_WG), _cols(max_cols), 1), (ELEMENTWISE_WG,),
                    push_words(n, col_source, float(s)))


def add(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 X [cols, n] (in and out), 2 B [cols, n]: x += b (the residual add)."""
    return _elementwise("add", n, col_source, max_cols)


def mul(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 X [cols, n] (in and out), 2 B [cols, n]: x *= b."""
    return _elementwise("mul", n, col_source, max_cols)


def add_bias(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 X [cols, n] (in and out), 2 BIAS [n]: each row += bias."""
    return _elementwise("add_bias", n, col_source, max_cols)


def swiglu(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 G [cols, n] (in and out), 2 U [cols, n]: g = silu(g) * u."""
    return _elementwise("swiglu", n, col_source, max_cols)


def gelu_mul(caps: Caps, n: int, col_source: int, max_cols: int) -> Dispatch:
    """1 G [cols, n] (in and out), 2 U [cols, n]: g = gelu(g) * u, with the CPU's gk_gelu (the
    tanh approximation)."""
    return _elementwise("gelu_mul", n, col_source, max_cols)


def glu_split(caps: Caps, n: int, col_source: int, max_cols: int, gelu: bool = False) -> Dispatch:
    """1 Y [cols, n] (out), 2 GU [cols, 2n], gate then up in each column (a product by the gate and
    up matrices stacked): y = silu(gate) * up, or gelu(gate) * up."""
    return _elementwise("gelu_mul_split" if gelu else "swiglu_split", n, col_source, max_cols)


def scale(caps: Caps, n: int, col_source: int, s: float, max_cols: int) -> Dispatch:
    """1 X [cols, n] in place: x *= s."""
    return _elementwise("scale", n, col_source, max_cols, s)


def softcap(caps: Caps, n: int, col_source: int, cap: float, max_cols: int) -> Dispatch:
    """1 X [cols, n] in place: x = cap * tanh(x / cap)."""
    if not cap > 0:
        raise ValueError(f"softcap: cap must be positive, not {cap}")
    return _elementwise("softcap", n, col_source, max_cols, cap)


def gather_rows(caps: Caps, n: int, max_cols: int) -> Dispatch:
    """1 X [tokens, n], 2 Y [logit rows, n]: Y[i] = X[P.logit_rows[i]] for i < P.n_logits."""
    return Dispatch("gather_rows", (_groups(n, ELEMENTWISE_WG), _cols(max_cols), 1), (ELEMENTWISE_WG,),
                    push_words(n))
