# The decoder forward pass of kernels/decoder.h (included into cpu_kernels.pyx): Decoder holds the
# C description of a model whose weights stay in the GGUF mmap, KVCache the cache it runs over.
# Shapes and types are checked here once, at construction; forward() then checks only its
# per-call arguments and runs the whole batch in C with the GIL released.
from libc.stdint cimport uintptr_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset
from posix.unistd cimport _SC_PAGESIZE, sysconf

from gpt4all_core.backend.env import flag

cdef extern from "sys/mman.h" nogil:
    int madvise(void *addr, size_t length, int advice)

# Unmap a range of a file map from this process: it leaves the resident set, its pages stay in the
# page cache (MADV_PAGEOUT, which evicts them, made each embedding lookup of a tied output a disk read)
cdef int MADV_DONTNEED = 4

cdef extern from "decoder.h" nogil:
    ctypedef struct gk_matrix:
        const void *data
        int type
        int64_t n_out, n_in
        int layout
    int GK_LAYOUT_ROWS16

    ctypedef struct gk_decoder_block:
        const float *attn_norm
        const float *attn_q_norm
        const float *attn_k_norm
        const float *attn_post_norm
        gk_matrix wq, wk, wv, wo
        const float *bq
        const float *bk
        const float *bv
        const float *bo
        const float *ffn_norm
        const float *ffn_post_norm
        gk_matrix ffn_gate, ffn_up, ffn_down
        gk_rope_params rope
        int32_t window

    enum:
        GK_ACT_SILU
        GK_ACT_GELU

    ctypedef struct gk_decoder:
        int64_t n_block, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab
        float norm_eps, attn_scale, embd_scale, attn_softcap, final_softcap
        int act
        gk_matrix tok_embd, output
        const float *output_norm
        const gk_decoder_block *blocks

    ctypedef struct gk_kv_cache:
        int64_t n_ctx
        int f16
        void **k
        void **v
        int32_t *pos

    size_t gk_decoder_scratch_size(const gk_decoder *m, int64_t n_max)
    int gk_decoder_forward_batch(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens,
                                 const int32_t *pos, const int32_t *slots, const int32_t *kv_range, int64_t n,
                                 int64_t n_kv, float *logits, const int32_t *logit_rows, int64_t n_logits,
                                 void *scratch, int n_threads)
    int gk_decoder_forward_hidden(const gk_decoder *m, const gk_kv_cache *c, const int32_t *tokens,
                                  const int32_t *pos, const int32_t *slots, const int32_t *kv_range, int64_t n,
                                  int64_t n_kv, float *hidden, void *scratch, int n_threads)
    int gk_kv_cache_shift(const gk_decoder *m, const gk_kv_cache *c, int64_t dst, int64_t src, int64_t count,
                          int32_t delta, int n_threads)

cdef int32_t *_op_wi(object a) except? NULL:
    cdef int32_t[::1] v = a.reshape(-1)
    return &v[0]


_BLOCK_VECTORS = ("attn_norm", "attn_q_norm", "attn_k_norm", "attn_post_norm", "bq", "bk", "bv", "bo",
                  "ffn_norm", "ffn_post_norm")
_BLOCK_MATRICES = ("wq", "wk", "wv", "wo", "ffn_gate", "ffn_up", "ffn_down")
_REQUIRED = ("attn_norm", "ffn_norm") + _BLOCK_MATRICES
# "0": the decoder keeps every matrix in the GGUF's row layout (for comparisons); unset or "1": matrices
# of a type with a rows16 product (rows16_supported) are repacked 16 rows at a time when built
ROWS16_ENV = "GPT4ALL_CORE_CPU_ROWS16"


def _in_read_only_file_map(arr):
    """Whether arr's memory is a read-only mmap of a file (a GGUF's tensor), through its views."""
    import mmap
    obj = arr
    while obj is not None:
        if isinstance(obj, mmap.mmap):
            return memoryview(obj).readonly  # a private writable map could hold changes: left alone
        obj = obj.obj if isinstance(obj, memoryview) else getattr(obj, "base", None)
    return False


cdef _page_out(const uint8_t[:, ::1] view):
    """Unmap the whole pages of a repacked matrix's source (a read-only file mmap) from this process,
    so that they do not stay resident beside the copy; the page cache keeps them, so a later read
    (a tied output's embedding lookups) is a minor fault. Advisory: an error leaves them mapped."""
    cdef uintptr_t page = <uintptr_t>sysconf(_SC_PAGESIZE), start = <uintptr_t>&view[0, 0]
    cdef uintptr_t end = start + view.shape[0] * view.shape[1]
    start = (start + page - 1) // page * page
    end = end // page * page
    if end > start:
        madvise(<void *>start, end - start, MADV_DONTNEED)


cdef _repack_rows16_in_slices(const uint8_t[:, ::1] src, int type_id, int64_t k, str name):
    """repack_rows16(src) a few MiB at a time, each slice's source pages unmapped once it is copied
    when src is a read-only file map (only there is that safe: anonymous pages would be zeroed), so
    the source and the copy are never resident together beyond a slice: a peak of the model's size,
    not the size plus its largest matrix (Gemma 3 270M's tied 168 MiB output)."""
    cdef int64_t m = src.shape[0], step = max(16, (4 << 20) // src.shape[1] // 16 * 16), a, n
    out = np.empty((m, src.shape[1]), np.uint8)
    cdef uint8_t[:, ::1] ov = out
    cdef bint unmap = _in_read_only_file_map(src)
    cdef int rc
    for a in range(0, m, step):
        n = min(step, m - a)
        with nogil:
            rc = gk_repack_rows16(type_id, &src[a, 0], n, k, &ov[a, 0])
        if rc:
            raise ValueError(f"{name}: cannot repack {m} rows of {k} elements 16 at a time")
        if unmap:
            _page_out(src[a:a + n])
    return out


cdef class Decoder:
    """A decoder-only transformer over weights that stay where they are (the GGUF mmap).

    Decoder(hparams, globals, blocks): hparams a dict of n_embd, n_head, n_head_kv, head_dim, n_ff,
    n_vocab, norm_eps and optionally attn_scale, embd_scale, attn_softcap, final_softcap, act
    ("silu" or "gelu"); globals a dict with tok_embd and output as (data, ggml_type) pairs and
    output_norm a float32 vector; blocks a list of dicts, each with the matrices wq, wk, wv, wo,
    ffn_gate, ffn_up, ffn_down as (data, ggml_type), the float32 vectors attn_norm, ffn_norm (and
    optionally attn_q_norm, attn_k_norm, attn_post_norm, ffn_post_norm, bq, bk, bv, bo), "rope" a
    dict of rope() keywords (n_rot, mode, freq_base, freq_scale, freq_factors, ext_factor,
    attn_factor, beta_fast, beta_slow, n_ctx_orig) and "window" (0 for full attention).
    """
    cdef gk_decoder m
    cdef gk_decoder_block *blocks
    cdef readonly list arrays  # the arrays the C pointers point into (weights: views of the mmap)
    cdef object _scratch
    cdef readonly dict hparams

    def __cinit__(self):
        self.blocks = NULL
        self.arrays = []

    def __dealloc__(self):
        free(self.blocks)

    def __init__(self, dict hparams, dict globals, list blocks):
        self.hparams = dict(hparams)
        m = &self.m
        memset(m, 0, sizeof(gk_decoder))
        m.n_block = len(blocks)
        m.n_embd, m.n_head, m.n_head_kv = hparams["n_embd"], hparams["n_head"], hparams["n_head_kv"]
        m.head_dim, m.n_ff, m.n_vocab = hparams["head_dim"], hparams["n_ff"], hparams["n_vocab"]
        for name in ("n_embd", "n_head", "n_head_kv", "head_dim", "n_ff", "n_vocab"):
            if hparams[name] < 1:
                raise ValueError(f"{name} must be positive, not {hparams[name]}")
        if m.n_head % m.n_head_kv:
            raise ValueError(f"n_head ({m.n_head}) must be a multiple of n_head_kv ({m.n_head_kv})")
        m.norm_eps = hparams["norm_eps"]
        m.attn_scale = hparams.get("attn_scale") or 1.0 / sqrt(<double>m.head_dim)
        m.embd_scale = hparams.get("embd_scale", 1.0)
        m.attn_softcap = hparams.get("attn_softcap", 0.0)
        m.final_softcap = hparams.get("final_softcap", 0.0)
        act = hparams.get("act", "silu")
        if act not in ("silu", "gelu"):
            raise ValueError(f"act must be 'silu' or 'gelu', not {act!r}")
        m.act = GK_ACT_GELU if act == "gelu" else GK_ACT_SILU
        q_dim, kv_dim = m.n_head * m.head_dim, m.n_head_kv * m.head_dim
        self._matrix(&m.tok_embd, globals["tok_embd"], "tok_embd", m.n_vocab, m.n_embd, weight=False)
        self._matrix(&m.output, globals["output"], "output", m.n_vocab, m.n_embd)
        m.output_norm = self._vector(globals["output_norm"], "output_norm", m.n_embd)
        self.blocks = <gk_decoder_block *>calloc(max(1, m.n_block), sizeof(gk_decoder_block))
        if self.blocks == NULL:
            raise MemoryError()
        m.blocks = self.blocks
        shapes = {"wq": (q_dim, m.n_embd), "wk": (kv_dim, m.n_embd), "wv": (kv_dim, m.n_embd),
                  "wo": (m.n_embd, q_dim), "ffn_gate": (m.n_ff, m.n_embd), "ffn_up": (m.n_ff, m.n_embd),
                  "ffn_down": (m.n_embd, m.n_ff)}
        lengths = {"attn_norm": m.n_embd, "attn_q_norm": m.head_dim, "attn_k_norm": m.head_dim,
                   "attn_post_norm": m.n_embd, "bq": q_dim, "bk": kv_dim, "bv": kv_dim, "bo": m.n_embd,
                   "ffn_norm": m.n_embd, "ffn_post_norm": m.n_embd}
        for l, blk in enumerate(blocks):
            self._block(&self.blocks[l], l, blk, shapes, lengths)

    cdef _matrix(self, gk_matrix *out, pair, str name, int64_t n_out, int64_t n_in, bint weight=True):
        data, ggml_type = pair
        cdef const gk_type_traits *t = _traits(ggml_type)
        if weight and t.vec_dot == NULL:
            raise ValueError(f"{name}: {t.name.decode()} is not a weight type the kernels multiply by")
        rows = _raw_rows(data, name)
        if rows.shape[0] != n_out or _row_elements(t, rows.shape[1], name) != n_in:
            raise ValueError(f"{name}: expected {n_out} rows of {n_in} elements, got {rows.shape[0]} rows of "
                             f"{rows.shape[1]} bytes of {t.name.decode()}")
        out.layout = 0
        if weight and n_out % 16 == 0 and gk_rows16_supported(int(ggml_type)) and flag(ROWS16_ENV, True):
            rows = _repack_rows16_in_slices(rows, int(ggml_type), n_in, name)  # kernels/rows16.c
            out.layout = GK_LAYOUT_ROWS16
        self.arrays.append(rows)
        cdef const uint8_t[:, ::1] view = rows
        out.data = &view[0, 0]
        out.type, out.n_out, out.n_in = int(ggml_type), n_out, n_in

    cdef const float *_vector(self, data, str name, int64_t n) except? NULL:
        if data is None:
            return NULL
        arr = np.ascontiguousarray(data, dtype=np.float32).reshape(-1)
        if arr.shape[0] != n:
            raise ValueError(f"{name}: expected {n} float32 values, got shape {np.shape(data)}")
        self.arrays.append(arr)
        cdef const float[::1] view = arr
        return &view[0]

    cdef _block(self, gk_decoder_block *b, int l, dict blk, dict shapes, dict lengths):
        for name in _REQUIRED:
            if blk.get(name) is None:
                raise ValueError(f"block {l}: {name} is missing")
        unknown = set(blk) - set(_BLOCK_VECTORS) - set(_BLOCK_MATRICES) - {"rope", "window"}
        if unknown:
            raise ValueError(f"block {l}: unknown entries {sorted(unknown)}")
        b.attn_norm = self._vector(blk["attn_norm"], f"blk.{l}.attn_norm", lengths["attn_norm"])
        b.attn_q_norm = self._vector(blk.get("attn_q_norm"), f"blk.{l}.attn_q_norm", lengths["attn_q_norm"])
        b.attn_k_norm = self._vector(blk.get("attn_k_norm"), f"blk.{l}.attn_k_norm", lengths["attn_k_norm"])
        b.attn_post_norm = self._vector(blk.get("attn_post_norm"), f"blk.{l}.attn_post_norm", lengths["attn_post_norm"])
        b.bq = self._vector(blk.get("bq"), f"blk.{l}.bq", lengths["bq"])
        b.bk = self._vector(blk.get("bk"), f"blk.{l}.bk", lengths["bk"])
        b.bv = self._vector(blk.get("bv"), f"blk.{l}.bv", lengths["bv"])
        b.bo = self._vector(blk.get("bo"), f"blk.{l}.bo", lengths["bo"])
        b.ffn_norm = self._vector(blk["ffn_norm"], f"blk.{l}.ffn_norm", lengths["ffn_norm"])
        b.ffn_post_norm = self._vector(blk.get("ffn_post_norm"), f"blk.{l}.ffn_post_norm", lengths["ffn_post_norm"])
        cdef gk_matrix *mats[7]
        mats[:] = [&b.wq, &b.wk, &b.wv, &b.wo, &b.ffn_gate, &b.ffn_up, &b.ffn_down]
        for i, name in enumerate(_BLOCK_MATRICES):
            n_out, n_in = shapes[name]
            self._matrix(mats[i], blk[name], f"blk.{l}.{name}", n_out, n_in)
        b.window = blk.get("window", 0)
        if b.window < 0:
            raise ValueError(f"block {l}: window must be 0 or positive, not {b.window}")
        r = dict(blk.get("rope") or {})
        b.rope.n_rot = r.get("n_rot", self.m.head_dim)
        if b.rope.n_rot < 0 or b.rope.n_rot % 2 or b.rope.n_rot > self.m.head_dim:
            raise ValueError(f"block {l}: n_rot must be even and at most head_dim, not {b.rope.n_rot}")
        mode = r.get("mode", "normal")
        if mode not in ("normal", "neox"):
            raise ValueError(f"block {l}: rope mode must be 'normal' or 'neox', not {mode!r}")
        b.rope.mode = GK_ROPE_NEOX if mode == "neox" else GK_ROPE_NORMAL
        b.rope.freq_base, b.rope.freq_scale = r.get("freq_base", 10000.0), r.get("freq_scale", 1.0)
        b.rope.freq_factors = self._vector(r.get("freq_factors"), f"blk.{l} rope freq_factors", b.rope.n_rot // 2)
        b.rope.ext_factor, b.rope.attn_factor = r.get("ext_factor", 0.0), r.get("attn_factor", 1.0)
        b.rope.beta_fast, b.rope.beta_slow = r.get("beta_fast", 32.0), r.get("beta_slow", 1.0)
        b.rope.n_ctx_orig = r.get("n_ctx_orig", 0)
        if not (b.rope.freq_base > 0 and b.rope.freq_scale > 0):
            raise ValueError(f"block {l}: rope freq_base and freq_scale must be positive")
        if b.rope.ext_factor != 0 and b.rope.n_ctx_orig <= 0:
            raise ValueError(f"block {l}: YaRN (ext_factor != 0) needs n_ctx_orig")

    @property
    def n_vocab(self):
        return self.m.n_vocab

    @property
    def n_block(self):
        return self.m.n_block

    cdef _check_cache(self, KVCache cache):
        if cache.n_block != self.m.n_block or cache.kv_dim != self.m.n_head_kv * self.m.head_dim:
            raise ValueError("cache: made for another model shape")

    def _batch(self, KVCache cache, tokens, positions, slots, int64_t n_kv, int64_t n_logits, kv_ranges, logit_rows):
        """forward()'s argument checks; returns the arrays the C pass takes."""
        self._check_cache(cache)
        tok = np.ascontiguousarray(tokens, dtype=np.int32).reshape(-1)
        n = tok.shape[0]
        if n == 0:
            raise ValueError("tokens: at least one token is needed")
        if tok.min() < 0 or tok.max() >= self.m.n_vocab:
            raise ValueError(f"tokens: ids must lie in [0, {self.m.n_vocab}), got {tok.min()}..{tok.max()}")
        pos = _op_positions(positions, "positions", n)
        sl = _op_positions(slots, "slots", n)
        if not 0 < n_kv <= cache.n_ctx:
            raise ValueError(f"n_kv must lie in [1, {cache.n_ctx}], not {n_kv}")
        if sl.min() < 0 or sl.max() >= n_kv:
            raise ValueError(f"slots must lie in [0, n_kv = {n_kv}), got {sl.min()}..{sl.max()}")
        if len(np.unique(sl)) != n:
            raise ValueError("slots: each token needs a slot of its own")
        rng = None
        if kv_ranges is not None:
            rng = _op_kv_ranges(kv_ranges, n, n_kv)
            if np.any(sl < rng[:, 0]) or np.any(sl >= rng[:, 1]):
                raise ValueError("slots: each token's slot must lie in its own kv_ranges [lo, hi)")
        rows = None
        if logit_rows is not None:
            rows = np.ascontiguousarray(logit_rows, dtype=np.int64).reshape(-1)
            if rows.size and (rows.min() < 0 or rows.max() >= n):
                raise ValueError(f"logit_rows must lie in [0, {n}), got {rows.min()}..{rows.max()}")
            rows = rows.astype(np.int32)
            n_logits = rows.shape[0]
        if not 0 <= n_logits <= n:
            raise ValueError(f"n_logits must lie in [0, {n}], not {n_logits}")
        return tok, pos, sl, rng, rows, n_logits

    def forward_hidden(self, KVCache cache, tokens, positions, slots, int64_t n_kv, n_threads=None, kv_ranges=None):
        """forward() without the head: the residual stream after the last block, float32
        [n_tokens, n_embd] (the CPU's part of a model split between the CPU and a GPU)."""
        tok, pos, sl, rng, _, _ = self._batch(cache, tokens, positions, slots, n_kv, 0, kv_ranges, None)
        cdef int64_t n = tok.shape[0]
        cdef int nt = _threads(n_threads)
        cdef size_t need = gk_decoder_scratch_size(&self.m, n)
        if self._scratch is None or self._scratch.shape[0] < need:
            self._scratch = np.empty(need, np.uint8)
        out = np.empty((n, self.m.n_embd), np.float32)
        cdef uint8_t[::1] sv = self._scratch
        cdef float *hp = _op_wf(out)
        cdef const int32_t *tp = _op_ci(tok)
        cdef const int32_t *pp = _op_ci(pos)
        cdef const int32_t *sp = _op_ci(sl)
        cdef const int32_t *rp = _op_ci(rng)
        cdef int rc
        with nogil:
            rc = gk_decoder_forward_hidden(&self.m, &cache.c, tp, pp, sp, rp, n, n_kv, hp, &sv[0], nt)
        if rc == -2:
            raise MemoryError("decoder forward: out of memory")
        if rc:
            raise ValueError(f"decoder forward failed (code {rc})")
        return out

    def forward(self, KVCache cache, tokens, positions, slots, int64_t n_kv, int64_t n_logits=1, n_threads=None,
                kv_ranges=None, logit_rows=None):
        """Runs tokens at positions, storing their K/V in cache slots, attending over slots [0, n_kv).
        Returns float32 logits [n_logits, n_vocab] of the last n_logits tokens.

        Several sequences in one batch: kv_ranges [n_tokens, 2] gives token t the slots
        [kv_ranges[t, 0], kv_ranges[t, 1]) holding its own sequence (its own slot among them), so it
        attends to nothing else; logit_rows (token indices) picks whose logits come back, in that
        order, instead of the last n_logits (n_logits is then ignored). Every product is
        batch-invariant, so a token's logits do not depend on what else is in the batch."""
        tok, pos, sl, rng, rows, n_logits = self._batch(cache, tokens, positions, slots, n_kv, n_logits, kv_ranges,
                                                        logit_rows)
        cdef int64_t n = tok.shape[0]
        cdef int nt = _threads(n_threads)
        cdef size_t need = gk_decoder_scratch_size(&self.m, n)
        if self._scratch is None or self._scratch.shape[0] < need:
            self._scratch = np.empty(need, np.uint8)
        out = np.empty((n_logits, self.m.n_vocab), np.float32)
        cdef uint8_t[::1] sv = self._scratch
        cdef float *lp = _op_wf(out) if n_logits else NULL
        cdef const int32_t *tp = _op_ci(tok)
        cdef const int32_t *pp = _op_ci(pos)
        cdef const int32_t *sp = _op_ci(sl)
        cdef const int32_t *rp = _op_ci(rng)
        cdef const int32_t *lr = _op_ci(rows) if rows is not None and rows.shape[0] else NULL
        cdef int rc
        with nogil:
            rc = gk_decoder_forward_batch(&self.m, &cache.c, tp, pp, sp, rp, n, n_kv, lp, lr, n_logits, &sv[0], nt)
        if rc == -2:
            raise MemoryError("decoder forward: out of memory")
        if rc:
            raise ValueError(f"decoder forward failed (code {rc})")
        return out

    def shift(self, KVCache cache, int64_t dst, int64_t src, int64_t count, int delta, n_threads=None):
        """Moves the K/V of slots [src, src + count) to [dst, ...) with positions shifted by delta and
        keys re-rotated (context erase without re-evaluation)."""
        self._check_cache(cache)
        if count < 0 or dst < 0 or src < 0 or dst + count > cache.n_ctx or src + count > cache.n_ctx:
            raise ValueError(f"slots [{src}, {src + count}) -> [{dst}, ...) do not fit a cache of {cache.n_ctx}")
        cdef int nt = _threads(n_threads), rc
        with nogil:
            rc = gk_kv_cache_shift(&self.m, &cache.c, dst, src, count, delta, nt)
        if rc:
            raise MemoryError("kv cache shift: out of memory")


cdef class KVCache:
    """K and V of every block for n_ctx slots ([n_ctx, n_head_kv, head_dim] each, float16 by
    default as llama.cpp and GPT4All keep it), and the position each slot holds (-1: empty)."""
    cdef gk_kv_cache c
    cdef void **_k
    cdef void **_v
    cdef readonly list k, v
    cdef readonly object pos
    cdef readonly int64_t n_ctx, n_block, kv_dim

    def __cinit__(self):
        self._k = self._v = NULL

    def __dealloc__(self):
        free(self._k)
        free(self._v)

    def __init__(self, Decoder decoder, int64_t n_ctx, bint f16=True, pos=None):
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be positive, not {n_ctx}")
        cdef int64_t n_kv_head = decoder.m.n_head_kv, hd = decoder.m.head_dim, l
        self.n_ctx, self.n_block, self.kv_dim = n_ctx, decoder.m.n_block, n_kv_head * hd
        dtype = np.float16 if f16 else np.float32
        self.k = [np.zeros((n_ctx, n_kv_head, hd), dtype) for _ in range(self.n_block)]
        self.v = [np.zeros((n_ctx, n_kv_head, hd), dtype) for _ in range(self.n_block)]
        if pos is None:
            self.pos = np.full(n_ctx, -1, np.int32)
        else:  # shared with the GPU part's cache of a split model
            if not (isinstance(pos, np.ndarray) and pos.dtype == np.int32 and pos.shape == (n_ctx,)
                    and pos.flags.c_contiguous and pos.flags.writeable):
                raise ValueError(f"pos: expected a writable contiguous int32 array of {n_ctx}")
            self.pos = pos
        self._k = <void **>calloc(max(1, self.n_block), sizeof(void *))
        self._v = <void **>calloc(max(1, self.n_block), sizeof(void *))
        if self._k == NULL or self._v == NULL:
            raise MemoryError()
        for l in range(self.n_block):
            self._k[l] = <void *>_op_cv(self.k[l])
            self._v[l] = <void *>_op_cv(self.v[l])
        self.c.n_ctx, self.c.f16 = n_ctx, f16
        self.c.k, self.c.v = self._k, self._v
        self.c.pos = <int32_t *>_op_wi(self.pos)

    def clear(self):
        """Every slot empty (the values stay; an empty slot is never read)."""
        self.pos.fill(-1)
