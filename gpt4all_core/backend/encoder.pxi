# The BERT encoder forward pass of kernels/encoder.h (included into cpu_kernels.pyx): Encoder holds
# the C description of a model whose weights stay in the GGUF mmap. Shapes and types are checked
# here once, at construction; forward() then checks only its per-call arguments and runs the whole
# batch, pooling included, in C with the GIL released.

cdef extern from "encoder.h" nogil:
    ctypedef struct gk_encoder_block:
        gk_matrix wq, wk, wv, wo, ffn_up, ffn_down
        const float *bq
        const float *bk
        const float *bv
        const float *bo
        const float *ffn_up_b
        const float *ffn_down_b
        const float *attn_norm_w
        const float *attn_norm_b
        const float *out_norm_w
        const float *out_norm_b

    ctypedef struct gk_encoder:
        int64_t n_block, n_embd, n_head, n_ff, n_vocab, n_pos
        float norm_eps, attn_scale
        int gelu_erf
        gk_matrix tok_embd, pos_embd
        const float *type_embd
        const float *embd_norm_w
        const float *embd_norm_b
        const gk_encoder_block *blocks

    size_t gk_encoder_scratch_size(const gk_encoder *m, int64_t n_tokens)
    int gk_encoder_forward(const gk_encoder *m, const int32_t *tokens, const int64_t *seq_start, int64_t n_seq,
                           int pooling, int normalize, float *out, void *scratch, int n_threads)


POOLING = ("none", "mean", "cls", "last")  # index = llama.cpp's pooling_type number
_ENC_MATRICES = ("wq", "wk", "wv", "wo", "ffn_up", "ffn_down")
_ENC_BIASES = ("bq", "bk", "bv", "bo", "ffn_up_b", "ffn_down_b")
_ENC_NORMS = ("attn_norm_w", "attn_norm_b", "out_norm_w", "out_norm_b")


cdef class Encoder:
    """A BERT encoder over weights that stay where they are (the GGUF mmap).

    Encoder(hparams, globals, blocks): hparams a dict of n_embd, n_head, n_ff, n_vocab, n_pos
    (position table rows), norm_eps and optionally attn_scale (default 1/sqrt(head_dim)) and gelu
    ("tanh", llama.cpp's form and the default, or "erf"); globals a dict with tok_embd and pos_embd
    as (data, ggml_type) pairs, type_embd (float32 [n_embd], token type 0's row, or None) and the
    float32 vectors embd_norm_w, embd_norm_b; blocks a list of dicts, each with the matrices wq, wk,
    wv, wo, ffn_up, ffn_down as (data, ggml_type), the float32 vectors attn_norm_w, attn_norm_b,
    out_norm_w, out_norm_b and optionally the biases bq, bk, bv, bo, ffn_up_b, ffn_down_b.
    """
    cdef gk_encoder m
    cdef gk_encoder_block *blocks
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
        memset(m, 0, sizeof(gk_encoder))
        for name in ("n_embd", "n_head", "n_ff", "n_vocab", "n_pos"):
            if hparams[name] < 1:
                raise ValueError(f"{name} must be positive, not {hparams[name]}")
        m.n_block = len(blocks)
        m.n_embd, m.n_head, m.n_ff = hparams["n_embd"], hparams["n_head"], hparams["n_ff"]
        m.n_vocab, m.n_pos = hparams["n_vocab"], hparams["n_pos"]
        if m.n_embd % m.n_head:
            raise ValueError(f"n_embd ({m.n_embd}) must be a multiple of n_head ({m.n_head})")
        m.norm_eps = hparams["norm_eps"]
        m.attn_scale = hparams.get("attn_scale") or 1.0 / sqrt(<double>(m.n_embd // m.n_head))
        gelu = hparams.get("gelu", "tanh")
        if gelu not in ("tanh", "erf"):
            raise ValueError(f"gelu must be 'tanh' or 'erf', not {gelu!r}")
        m.gelu_erf = gelu == "erf"
        self._matrix(&m.tok_embd, globals["tok_embd"], "tok_embd", m.n_vocab, m.n_embd, weight=False)
        self._matrix(&m.pos_embd, globals["pos_embd"], "pos_embd", m.n_pos, m.n_embd, weight=False)
        m.type_embd = self._vector(globals.get("type_embd"), "type_embd", m.n_embd)
        m.embd_norm_w = self._vector(globals["embd_norm_w"], "embd_norm_w", m.n_embd)
        m.embd_norm_b = self._vector(globals["embd_norm_b"], "embd_norm_b", m.n_embd)
        self.blocks = <gk_encoder_block *>calloc(max(1, m.n_block), sizeof(gk_encoder_block))
        if self.blocks == NULL:
            raise MemoryError()
        m.blocks = self.blocks
        for l, blk in enumerate(blocks):
            self._block(&self.blocks[l], l, blk)

    cdef _matrix(self, gk_matrix *out, pair, str name, int64_t n_out, int64_t n_in, bint weight=True):
        data, ggml_type = pair
        cdef const gk_type_traits *t = _traits(ggml_type)
        if weight and t.vec_dot == NULL:
            raise ValueError(f"{name}: {t.name.decode()} is not a weight type the kernels multiply by")
        rows = _raw_rows(data, name)
        if rows.shape[0] != n_out or _row_elements(t, rows.shape[1], name) != n_in:
            raise ValueError(f"{name}: expected {n_out} rows of {n_in} elements, got {rows.shape[0]} rows of "
                             f"{rows.shape[1]} bytes of {t.name.decode()}")
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

    cdef _block(self, gk_encoder_block *b, int l, dict blk):
        for name in _ENC_MATRICES + _ENC_NORMS:
            if blk.get(name) is None:
                raise ValueError(f"block {l}: {name} is missing")
        unknown = set(blk) - set(_ENC_MATRICES) - set(_ENC_BIASES) - set(_ENC_NORMS)
        if unknown:
            raise ValueError(f"block {l}: unknown entries {sorted(unknown)}")
        cdef int64_t e = self.m.n_embd, ff = self.m.n_ff
        shapes = {"wq": (e, e), "wk": (e, e), "wv": (e, e), "wo": (e, e), "ffn_up": (ff, e), "ffn_down": (e, ff)}
        cdef gk_matrix *mats[6]
        mats[:] = [&b.wq, &b.wk, &b.wv, &b.wo, &b.ffn_up, &b.ffn_down]
        for i, name in enumerate(_ENC_MATRICES):
            self._matrix(mats[i], blk[name], f"blk.{l}.{name}", shapes[name][0], shapes[name][1])
        b.bq = self._vector(blk.get("bq"), f"blk.{l}.bq", e)
        b.bk = self._vector(blk.get("bk"), f"blk.{l}.bk", e)
        b.bv = self._vector(blk.get("bv"), f"blk.{l}.bv", e)
        b.bo = self._vector(blk.get("bo"), f"blk.{l}.bo", e)
        b.ffn_up_b = self._vector(blk.get("ffn_up_b"), f"blk.{l}.ffn_up_b", ff)
        b.ffn_down_b = self._vector(blk.get("ffn_down_b"), f"blk.{l}.ffn_down_b", e)
        b.attn_norm_w = self._vector(blk["attn_norm_w"], f"blk.{l}.attn_norm_w", e)
        b.attn_norm_b = self._vector(blk["attn_norm_b"], f"blk.{l}.attn_norm_b", e)
        b.out_norm_w = self._vector(blk["out_norm_w"], f"blk.{l}.out_norm_w", e)
        b.out_norm_b = self._vector(blk["out_norm_b"], f"blk.{l}.out_norm_b", e)

    @property
    def n_vocab(self):
        return self.m.n_vocab

    @property
    def n_embd(self):
        return self.m.n_embd

    @property
    def n_pos(self):
        return self.m.n_pos

    def forward(self, tokens, seq_start, str pooling="mean", bint normalize=True, n_threads=None):
        """Embeddings of the sequences packed in tokens (sequence s is tokens[seq_start[s]:seq_start[s + 1]],
        each at most n_pos long): float32 [n_seq, n_embd] pooled ("mean", "cls", "last"), or the
        hidden states [n_tokens, n_embd] for pooling "none"; rows scaled to unit length if normalize."""
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {', '.join(POOLING)}, not {pooling!r}")
        tok = np.ascontiguousarray(tokens, dtype=np.int32).reshape(-1)
        cdef int64_t n = tok.shape[0]
        if n == 0:
            raise ValueError("tokens: at least one token is needed")
        if tok.min() < 0 or tok.max() >= self.m.n_vocab:
            raise ValueError(f"tokens: ids must lie in [0, {self.m.n_vocab}), got {tok.min()}..{tok.max()}")
        starts = _seq_starts(seq_start, n)
        lengths = np.diff(starts)
        if lengths.max() > self.m.n_pos:
            raise ValueError(f"seq_start: a sequence of {lengths.max()} tokens is longer than the "
                             f"{self.m.n_pos} positions the model has")
        cdef int64_t n_seq = starts.shape[0] - 1
        cdef int pool = POOLING.index(pooling)
        cdef int nt = _threads(n_threads)
        cdef size_t need = gk_encoder_scratch_size(&self.m, n)
        if self._scratch is None or self._scratch.shape[0] < need:
            self._scratch = np.empty(need, np.uint8)
        out = np.empty((n if pool == 0 else n_seq, self.m.n_embd), np.float32)
        cdef uint8_t[::1] sv = self._scratch
        cdef const int64_t[::1] stv = starts
        cdef float *op = _op_wf(out)
        cdef const int32_t *tp = _op_ci(tok)
        cdef int rc
        with nogil:
            rc = gk_encoder_forward(&self.m, tp, &stv[0], n_seq, pool, normalize, op, &sv[0], nt)
        if rc:
            raise ValueError(f"encoder forward failed (code {rc})")
        return out
