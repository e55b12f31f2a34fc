# The non-quantized ops of kernels/ops.h (included into cpu_kernels.pyx).
#
# Every wrapper checks each array's dtype, layout and shape and raises ValueError naming the
# parameter before any C runs (the module is compiled with boundscheck off), then calls the kernel
# with the GIL released. Arrays must be C-contiguous numpy arrays: nothing is copied behind the
# caller's back, and in-place ops (rope, out=x) really act in place. n_threads None: the physical cores (quants.pxi's _threads).
from libc.math cimport sqrt
from libc.stdint cimport int32_t, int64_t

import numpy as np

cdef extern from "ops.h" nogil:
    ctypedef struct gk_rope_params:
        int n_rot
        int mode
        float freq_base, freq_scale
        const float *freq_factors
        float ext_factor, attn_factor, beta_fast, beta_slow
        int n_ctx_orig

    ctypedef struct gk_attn_params:
        const void *k
        const void *v
        int f16
        int64_t n_kv, n_head_kv, head_dim
        const int32_t *kv_pos
        int causal
        int32_t window
        float scale, softcap
        const int32_t *kv_range

    enum:
        GK_ROPE_NORMAL
        GK_ROPE_NEOX

    void gk_rms_norm(float *y, const float *x, const float *w, int64_t rows, int64_t n, float eps, int n_threads)
    void gk_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t n, float eps,
                       int n_threads)
    void gk_softmax(float *y, const float *x, const float *mask, int64_t mask_rows, int64_t rows, int64_t n,
                    float scale, int n_threads)
    int gk_rope(float *x, const int32_t *pos, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                const gk_rope_params *p, int n_threads)
    void gk_attention(float *out, const float *q, const int32_t *q_pos, int64_t n_tokens, int64_t n_head,
                      const gk_attn_params *p, int n_threads)
    void gk_attention_packed(float *out, const float *q, const float *k, const float *v, const int64_t *seq_start,
                             int64_t n_seq, int64_t n_head, int64_t head_dim, float scale, int n_threads)
    void gk_silu(float *y, const float *x, int64_t n, int n_threads)
    void gk_gelu(float *y, const float *x, int64_t n, int n_threads)
    void gk_gelu_erf(float *y, const float *x, int64_t n, int n_threads)
    void gk_swiglu(float *y, const float *gate, const float *up, int64_t n, int n_threads)
    void gk_scale(float *y, const float *x, float s, int64_t n, int n_threads)
    void gk_add(float *y, const float *a, const float *b, int64_t rows, int64_t b_rows, int64_t n, int n_threads)
    void gk_mul(float *y, const float *a, const float *b, int64_t rows, int64_t b_rows, int64_t n, int n_threads)
    void gk_copy_to_cache(void *cache, int f16, const float *src, const int32_t *slots, int64_t n_rows,
                          int64_t row_len)

_OP_F32 = np.dtype(np.float32)
_OP_I32 = np.dtype(np.int32)
_OP_HALF = (np.dtype(np.float16), np.dtype(np.uint16))


# ---- argument checks ----

def _op_array(a, str name, dtype=_OP_F32, int ndim=-1, int min_ndim=0, bint writable=False):
    """a itself, once it is a C-contiguous ndarray of dtype (one dtype, or a tuple of them)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(a).__name__}")
    if isinstance(dtype, tuple):
        if a.dtype not in dtype:
            raise ValueError(f"{name} must have dtype {' or '.join(d.name for d in dtype)}, not {a.dtype}")
    elif a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype.name}, not {a.dtype}")
    if ndim >= 0 and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, not shape {a.shape}")
    if a.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), not shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (see np.ascontiguousarray)")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return a


cdef object _op_out(object out, tuple shape, str name="out"):
    """A new float32 array of shape, or out once it fits."""
    if out is None:
        return np.empty(shape, np.float32)
    _op_array(out, name, writable=True)
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, not {out.shape}")
    return out


cdef object _op_trailing(object b, str name, tuple shape):
    """b, once its shape is a trailing part of shape (the broadcast the kernels do by rows)."""
    if b.ndim < 1 or b.ndim > len(shape) or b.shape != shape[len(shape) - b.ndim:]:
        raise ValueError(f"{name} has shape {b.shape}; it must be {shape} or a trailing part of it "
                         f"such as {shape[len(shape) - 1:]}")
    return b


cdef object _op_kv_ranges(object ranges, int64_t n_tokens, int64_t n_kv):
    """Per-token [lo, hi) slot ranges as C-contiguous int32 [n_tokens, 2], checked against n_kv."""
    if not isinstance(ranges, np.ndarray) or ranges.dtype.kind not in "iu":
        raise TypeError("kv_range must be a numpy array of integers")
    if ranges.shape != (n_tokens, 2):
        raise ValueError(f"kv_range must have shape ({n_tokens}, 2), not {ranges.shape}")
    if n_tokens and (ranges.min() < 0 or ranges.max() > n_kv or np.any(ranges[:, 0] > ranges[:, 1])):
        raise ValueError(f"kv_range: each [lo, hi) must satisfy 0 <= lo <= hi <= n_kv = {n_kv}")
    return np.ascontiguousarray(ranges, dtype=np.int32)


cdef object _op_positions(object pos, str name, int64_t n):
    """pos as a C-contiguous int32 array of length n (any integer array that fits is converted)."""
    if not isinstance(pos, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of integers, not {type(pos).__name__}")
    if pos.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, not {pos.dtype}")
    if pos.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), not {pos.shape}")
    if pos.dtype != _OP_I32:
        if n and (pos.min() < -2**31 or pos.max() >= 2**31):
            raise ValueError(f"{name} holds values outside int32")
        pos = pos.astype(np.int32)
    return np.ascontiguousarray(pos)


# Raw pointers from arrays already checked by _op_array (C-contiguous, right dtype, non-empty).
# NULL for None.
cdef const float *_op_cf(object a) except? NULL:
    if a is None:
        return NULL
    cdef const float[::1] v = a.reshape(-1)
    return &v[0]


cdef float *_op_wf(object a) except? NULL:
    cdef float[::1] v = a.reshape(-1)
    return &v[0]


cdef const int32_t *_op_ci(object a) except? NULL:
    if a is None:
        return NULL
    cdef const int32_t[::1] v = a.reshape(-1)
    return &v[0]


cdef const void *_op_cv(object a) except? NULL:
    """float32 or 16-bit data, as bytes"""
    cdef const unsigned char[::1] v = a.reshape(-1).view(np.uint8)
    return &v[0]


# ---- norms and softmax ----

def rms_norm(x, weight=None, float eps=1e-6, out=None, n_threads=None):
    """RMS norm over the last dimension: x / sqrt(mean(x^2) + eps) * weight.

    x: float32 [..., n]; weight: float32 [n] or None (gemma's (1 + w) is the model's to add).
    out may be x (in place). Returns out.
    """
    _op_array(x, "x", min_ndim=1)
    cdef int64_t n = x.shape[x.ndim - 1]
    if weight is not None and _op_array(weight, "weight").shape != (n,):
        raise ValueError(f"weight must have shape ({n},) to match x's last dimension, not {weight.shape}")
    out = _op_out(out, x.shape)
    cdef int nt = _threads(n_threads)
    if x.size == 0:
        return out
    cdef int64_t rows = x.size // n
    cdef const float *xp = _op_cf(x)
    cdef const float *wp = _op_cf(weight)
    cdef float *yp = _op_wf(out)
    with nogil:
        gk_rms_norm(yp, xp, wp, rows, n, eps, nt)
    return out


def layer_norm(x, weight=None, bias=None, float eps=1e-5, out=None, n_threads=None):
    """Layer norm over the last dimension: (x - mean) / sqrt(var + eps) * weight + bias.

    x: float32 [..., n]; weight, bias: float32 [n] or None. out may be x. Returns out.
    """
    _op_array(x, "x", min_ndim=1)
    cdef int64_t n = x.shape[x.ndim - 1]
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None and _op_array(a, name).shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match x's last dimension, not {a.shape}")
    out = _op_out(out, x.shape)
    cdef int nt = _threads(n_threads)
    if x.size == 0:
        return out
    cdef int64_t rows = x.size // n
    cdef const float *xp = _op_cf(x)
    cdef const float *wp = _op_cf(weight)
    cdef const float *bp = _op_cf(bias)
    cdef float *yp = _op_wf(out)
    with nogil:
        gk_layer_norm(yp, xp, wp, bp, rows, n, eps, nt)
    return out


def softmax(x, mask=None, float scale=1.0, out=None, n_threads=None):
    """softmax(x * scale + mask) over the last dimension.

    x: float32 [..., n]; mask: float32 of x's shape or a trailing part of it ([n], [rows, n], ...),
    broadcast over the leading dimensions; -inf entries mask. A row with nothing left is all zeros.
    out may be x. Returns out.
    """
    _op_array(x, "x", min_ndim=1)
    if mask is not None:
        _op_trailing(_op_array(mask, "mask"), "mask", x.shape)
    out = _op_out(out, x.shape)
    cdef int nt = _threads(n_threads)
    if x.size == 0:
        return out
    cdef int64_t n = x.shape[x.ndim - 1]
    cdef int64_t rows = x.size // n
    cdef int64_t mask_rows = mask.size // n if mask is not None else 1
    cdef const float *xp = _op_cf(x)
    cdef const float *mp = _op_cf(mask)
    cdef float *yp = _op_wf(out)
    with nogil:
        gk_softmax(yp, xp, mp, mask_rows, rows, n, scale, nt)
    return out


# ---- RoPE ----

def rope(x, positions, n_rot=None, str mode="normal", float freq_base=10000.0, float freq_scale=1.0,
         freq_factors=None, float ext_factor=0.0, float attn_factor=1.0, float beta_fast=32.0,
         float beta_slow=1.0, int n_ctx_orig=0, n_threads=None):
    """Rotary position embedding in place on x, as ggml_rope_ext; returns x.

    x: float32 [n_tokens, n_heads, head_dim]; positions: integers [n_tokens]. n_rot (even,
    <= head_dim, default head_dim) dims rotate, the rest stay. mode "normal" pairs (2i, 2i+1)
    (llama), "neox" pairs (i, i + n_rot/2) (gemma, qwen2, NeoX). theta_i = pos * freq_scale *
    freq_base^(-2i/n_rot) / freq_factors[i] (freq_factors: float32 [n_rot/2] or None). YaRN when
    ext_factor != 0 (needs n_ctx_orig, the training context); cos and sin are scaled by attn_factor.
    """
    _op_array(x, "x", ndim=3, writable=True)
    cdef int64_t n_tokens = x.shape[0], n_heads = x.shape[1], head_dim = x.shape[2]
    pos = _op_positions(positions, "positions", n_tokens)
    cdef gk_rope_params p
    p.n_rot = head_dim if n_rot is None else n_rot
    if p.n_rot < 0 or p.n_rot % 2 or p.n_rot > head_dim:
        raise ValueError(f"n_rot must be even and at most head_dim ({head_dim}), not {n_rot}")
    if mode not in ("normal", "neox"):
        raise ValueError(f"mode must be 'normal' or 'neox', not {mode!r}")
    p.mode = GK_ROPE_NEOX if mode == "neox" else GK_ROPE_NORMAL
    if not freq_base > 0:
        raise ValueError(f"freq_base must be positive, not {freq_base}")
    if not freq_scale > 0:
        raise ValueError(f"freq_scale must be positive, not {freq_scale}")
    if freq_factors is not None and _op_array(freq_factors, "freq_factors").shape != (p.n_rot // 2,):
        raise ValueError(f"freq_factors must have shape ({p.n_rot // 2},) (n_rot/2), not {freq_factors.shape}")
    if ext_factor != 0 and n_ctx_orig <= 0:
        raise ValueError("n_ctx_orig (the training context length) must be positive when ext_factor != 0")
    p.freq_base, p.freq_scale, p.ext_factor, p.attn_factor = freq_base, freq_scale, ext_factor, attn_factor
    p.beta_fast, p.beta_slow, p.n_ctx_orig = beta_fast, beta_slow, n_ctx_orig
    cdef int nt = _threads(n_threads)
    if x.size == 0 or p.n_rot == 0:
        return x
    p.freq_factors = _op_cf(freq_factors)
    cdef float *xp = _op_wf(x)
    cdef const int32_t *pp = _op_ci(pos)
    cdef int rc
    with nogil:
        rc = gk_rope(xp, pp, n_tokens, n_heads, head_dim, &p, nt)
    if rc:
        raise MemoryError("rope: out of memory")
    return x


# ---- attention ----

def attention(q, k_cache, v_cache, q_pos=None, kv_pos=None, scale=None, bint causal=True, int window=0,
              float softcap=0.0, out=None, n_threads=None, kv_range=None):
    """Scaled dot-product attention of q over a KV cache: softmax(q k^T * scale + mask) v.

    q: float32 [n_tokens, n_head, head_dim]; k_cache, v_cache: [n_kv, n_head_kv, head_dim], both
    float32 or both F16 (np.float16, or np.uint16 bit patterns); n_head a multiple of n_head_kv
    (GQA: query head h reads kv head h // (n_head // n_head_kv)). q_pos [n_tokens] and kv_pos
    [n_kv]: the positions of the query tokens and of the tokens in the cache slots (default: the
    queries are the last n_tokens of arange(n_kv)); a negative kv_pos marks an empty slot.
    causal: slot j visible to token t only if kv_pos[j] <= q_pos[t]; window > 0: only if also
    kv_pos[j] > q_pos[t] - window (sliding window). scale default 1/sqrt(head_dim); softcap > 0:
    scores become softcap * tanh(score / softcap). A token that sees nothing gets zeros.
    kv_range [n_tokens, 2]: token t sees only slots [kv_range[t, 0], kv_range[t, 1]) (several
    sequences in one cache), the rules above applying inside it.
    Returns out [n_tokens, n_head, head_dim] (must not overlap q or the caches).
    """
    _op_array(q, "q", ndim=3)
    _op_array(k_cache, "k_cache", dtype=(_OP_F32,) + _OP_HALF, ndim=3)
    _op_array(v_cache, "v_cache", dtype=(_OP_F32,) + _OP_HALF, ndim=3)
    cdef int64_t n_tokens = q.shape[0], n_head = q.shape[1], head_dim = q.shape[2]
    cdef int64_t n_kv = k_cache.shape[0], n_head_kv = k_cache.shape[1]
    if k_cache.shape[2] != head_dim:
        raise ValueError(f"head_dim differs: q has {head_dim}, k_cache {k_cache.shape[2]}")
    if v_cache.shape != k_cache.shape:
        raise ValueError(f"v_cache must have k_cache's shape {k_cache.shape}, not {v_cache.shape}")
    cdef bint f16 = k_cache.dtype in _OP_HALF
    if (v_cache.dtype in _OP_HALF) != f16:
        raise ValueError(f"v_cache must be F32 or F16 as k_cache is ({k_cache.dtype}), not {v_cache.dtype}")
    if n_head_kv < 1 or n_head % n_head_kv:
        raise ValueError(f"n_head ({n_head}) must be a multiple of k_cache's n_head_kv ({n_head_kv})")
    if window < 0:
        raise ValueError(f"window must be 0 (none) or positive, not {window}")
    if not softcap >= 0:
        raise ValueError(f"softcap must be 0 (none) or positive, not {softcap}")
    if (causal or window > 0 or q_pos is not None) and kv_pos is None:
        kv_pos = np.arange(n_kv, dtype=np.int32)
    if kv_pos is not None:
        kv_pos = _op_positions(kv_pos, "kv_pos", n_kv)
        if q_pos is None:
            q_pos = np.arange(n_kv - n_tokens, n_kv, dtype=np.int32)
        q_pos = _op_positions(q_pos, "q_pos", n_tokens)
    out = _op_out(out, q.shape)
    for name, a in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache)):
        if np.may_share_memory(out, a):
            raise ValueError(f"out must not overlap {name}")
    cdef int nt = _threads(n_threads)
    cdef gk_attn_params p
    p.f16, p.n_kv, p.n_head_kv, p.head_dim = f16, n_kv, n_head_kv, head_dim
    p.causal, p.window, p.softcap = causal, window, softcap
    p.scale = (1.0 / sqrt(<double>head_dim) if head_dim else 1.0) if scale is None else float(scale)
    if q.size == 0:
        return out
    if n_kv == 0:
        out.fill(0)
        return out
    p.k, p.v = _op_cv(k_cache), _op_cv(v_cache)
    p.kv_pos = _op_ci(kv_pos)
    p.kv_range = NULL
    if kv_range is not None:
        kv_range = _op_kv_ranges(kv_range, n_tokens, n_kv)
        p.kv_range = _op_ci(kv_range)
    cdef const int32_t *qp = _op_ci(q_pos)
    cdef const float *qf = _op_cf(q)
    cdef float *op = _op_wf(out)
    with nogil:
        gk_attention(op, qf, qp, n_tokens, n_head, &p, nt)
    return out


def attention_packed(q, k, v, seq_start, scale=None, out=None, n_threads=None):
    """Bidirectional attention inside packed sequences (an encoder batch without padding).

    q, k, v: float32 [n_tokens, n_head, head_dim]; seq_start: integers [n_seq + 1] rising from 0 to
    n_tokens, sequence s being tokens [seq_start[s], seq_start[s + 1]). Each token attends to every
    token of its own sequence and to no other. scale default 1/sqrt(head_dim). Returns out of q's
    shape (must not overlap q, k or v).
    """
    for name, a in (("q", q), ("k", k), ("v", v)):
        _op_array(a, name, ndim=3)
    if k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"q, k and v must have one shape, not {q.shape}, {k.shape}, {v.shape}")
    starts = _seq_starts(seq_start, q.shape[0])
    out = _op_out(out, q.shape)
    for name, a in (("q", q), ("k", k), ("v", v)):
        if np.may_share_memory(out, a):
            raise ValueError(f"out must not overlap {name}")
    cdef int64_t n_seq = starts.shape[0] - 1, n_head = q.shape[1], head_dim = q.shape[2]
    cdef float sc = (1.0 / sqrt(<double>head_dim) if head_dim else 1.0) if scale is None else float(scale)
    if q.size == 0:
        return out
    cdef int nt = _threads(n_threads)
    cdef const int64_t[::1] sv = starts
    cdef const float *qf = _op_cf(q)
    cdef const float *kf = _op_cf(k)
    cdef const float *vf = _op_cf(v)
    cdef float *op = _op_wf(out)
    with nogil:
        gk_attention_packed(op, qf, kf, vf, &sv[0], n_seq, n_head, head_dim, sc, nt)
    return out


def _seq_starts(seq_start, int64_t n_tokens):
    """seq_start as int64 [n_seq + 1], checked to rise from 0 to n_tokens."""
    starts = np.ascontiguousarray(seq_start)
    if starts.ndim != 1 or starts.shape[0] < 2 or starts.dtype.kind not in "iu":
        raise ValueError(f"seq_start must be a 1-D integer array of at least 2 entries, not {starts.dtype} "
                         f"{starts.shape}")
    starts = starts.astype(np.int64)
    if starts[0] != 0 or starts[-1] != n_tokens or (np.diff(starts) < 0).any():
        raise ValueError(f"seq_start must rise from 0 to n_tokens = {n_tokens}, got {starts[:8].tolist()}...")
    return starts


# ---- activations and element-wise ops ----

cdef object _op_unary(int which, x, out, n_threads):
    _op_array(x, "x")
    out = _op_out(out, x.shape)
    cdef int nt = _threads(n_threads)
    cdef int64_t n = x.size
    if n == 0:
        return out
    cdef const float *xp = _op_cf(x)
    cdef float *yp = _op_wf(out)
    with nogil:
        if which == 0:
            gk_silu(yp, xp, n, nt)
        elif which == 1:
            gk_gelu(yp, xp, n, nt)
        else:
            gk_gelu_erf(yp, xp, n, nt)
    return out


def silu(x, out=None, n_threads=None):
    """x * sigmoid(x), element-wise on float32 x. out may be x. Returns out."""
    return _op_unary(0, x, out, n_threads)


def gelu(x, out=None, n_threads=None):
    """GELU, tanh approximation (ggml_gelu): x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return _op_unary(1, x, out, n_threads)


def gelu_erf(x, out=None, n_threads=None):
    """GELU, exact: x/2 (1 + erf(x / sqrt(2)))."""
    return _op_unary(2, x, out, n_threads)


def swiglu(gate, up, out=None, n_threads=None):
    """silu(gate) * up, element-wise; gate and up float32 of one shape. out may be either."""
    _op_array(gate, "gate")
    _op_array(up, "up")
    if up.shape != gate.shape:
        raise ValueError(f"up must have gate's shape {gate.shape}, not {up.shape}")
    out = _op_out(out, gate.shape)
    cdef int nt = _threads(n_threads)
    cdef int64_t n = gate.size
    if n == 0:
        return out
    cdef const float *gp = _op_cf(gate)
    cdef const float *up_ = _op_cf(up)
    cdef float *yp = _op_wf(out)
    with nogil:
        gk_swiglu(yp, gp, up_, n, nt)
    return out


def scale(x, float s, out=None, n_threads=None):
    """x * s, element-wise. out may be x. Returns out."""
    _op_array(x, "x")
    out = _op_out(out, x.shape)
    cdef int nt = _threads(n_threads)
    cdef int64_t n = x.size
    if n == 0:
        return out
    cdef const float *xp = _op_cf(x)
    cdef float *yp = _op_wf(out)
    with nogil:
        gk_scale(yp, xp, s, n, nt)
    return out


cdef object _op_binary(bint is_mul, a, b, out, n_threads):
    _op_array(a, "a", min_ndim=1)
    _op_trailing(_op_array(b, "b"), "b", a.shape)
    out = _op_out(out, a.shape)
    cdef int nt = _threads(n_threads)
    if a.size == 0:
        return out
    cdef int64_t n = a.shape[a.ndim - 1]
    cdef int64_t rows = a.size // n, b_rows = b.size // n
    cdef const float *ap = _op_cf(a)
    cdef const float *bp = _op_cf(b)
    cdef float *yp = _op_wf(out)
    with nogil:
        if is_mul:
            gk_mul(yp, ap, bp, rows, b_rows, n, nt)
        else:
            gk_add(yp, ap, bp, rows, b_rows, n, nt)
    return out


def add(a, b, out=None, n_threads=None):
    """a + b; b of a's shape or a trailing part of it (b [n] against a [rows, n]). out may be a."""
    return _op_binary(False, a, b, out, n_threads)


def mul(a, b, out=None, n_threads=None):
    """a * b; b of a's shape or a trailing part of it (b [n] against a [rows, n]). out may be a."""
    return _op_binary(True, a, b, out, n_threads)


# ---- KV cache ----

def copy_to_cache(cache, src, slots):
    """cache[slots[t]] = src[t] for each row t of src, converted to the cache's type.

    cache: [n_ctx, ...] float32 or F16 (np.float16 / np.uint16 bits); src: float32 [n_rows, ...]
    holding the same number of values per row; slots: integers [n_rows] in [0, n_ctx) (a slot
    given twice gets the later row).
    """
    _op_array(cache, "cache", dtype=(_OP_F32,) + _OP_HALF, min_ndim=1, writable=True)
    _op_array(src, "src", min_ndim=1)
    cdef int64_t n_rows = src.shape[0]
    cdef int64_t row_len = cache.size // cache.shape[0] if cache.shape[0] else int(np.prod(cache.shape[1:]))
    if src.size != n_rows * row_len:
        raise ValueError(f"src rows must hold {row_len} values as cache rows {cache.shape[1:]} do, "
                         f"not src shape {src.shape}")
    sl = _op_positions(slots, "slots", n_rows)
    if n_rows and (sl.min() < 0 or sl.max() >= cache.shape[0]):
        raise ValueError(f"slots must lie in [0, {cache.shape[0]}), not [{sl.min()}, {sl.max()}]")
    if n_rows == 0 or row_len == 0:
        return
    cdef int f16 = cache.dtype in _OP_HALF
    cdef void *cp = <void *>_op_cv(cache)
    cdef const float *sp = _op_cf(src)
    cdef const int32_t *slp = _op_ci(sl)
    with nogil:
        gk_copy_to_cache(cp, f16, sp, slp, n_rows, row_len)
