"""A decoder-only transformer on a Vulkan device: the same graph as kernels/decoder.c, as a
recorded list of shader dispatches.

Weights are packed (products.py) and uploaded once into device memory. Each batch shape (a bucket
of up to B tokens, L of them wanting logits) is recorded once into a Kompute sequence; a batch
then costs the host one write of the parameter buffer (token ids, positions, slots, ...: see
shaders/common.glsl) and one submit, whatever the number of ops. Products, norms and attention
read the real token count from that buffer, so a bucket serves every batch up to its size.

VulkanDecoder has the CPU Decoder's interface (forward, shift, new_cache, n_vocab, n_block), so
Session and the batch engine run on it unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpt4all_core.backend import cpu_kernels
from gpt4all_core.backend.vulkan import flags, ops, prefetch, products
from gpt4all_core.backend.vulkan.context import (Dispatch, VulkanContext, VulkanError, fill_params, make_params,
                                                 param_words)
from gpt4all_core.backend.vulkan.switches import (MAX_ATTENTION_SPLIT, attention_split, fuse_setting, params_kind,
                                                  reuse_fence, spin_wait)

MAX_BATCH = 512           # tokens per recorded pass; longer batches run as several passes
STAGING_BYTES = 32 << 20  # host-visible buffer weights go through on their way to device memory
F32, F16 = 0, 1
SPLIT_MAX_COLS = 8   # batches of up to this many tokens (decoding) split attention over the cache


@dataclass
class _Matrix:
    words: object  # kp tensor (storage) of the packed weight
    type: int
    n_out: int
    n_in: int


def _bucket(n: int, limit: int) -> int:
    """The recorded size serving n: 1, or the next power of two (at least 8, at most limit)."""
    if n <= 1:
        return n
    b = 8
    while b < n:
        b *= 2
    return min(b, limit)


class _Uploader:
    """Copies arrays into device-only tensors through one host-visible staging buffer."""

    def __init__(self, ctx: VulkanContext):
        self.ctx = ctx
        self.words = STAGING_BYTES // 4
        self.staging = ctx.tensor(np.zeros(self.words, np.uint32), "host")
        self.params = ctx.tensor(make_params(1, n_tokens=1), "host")
        self.copy = ops.copy_words(ctx.caps, 0, 0, self.words, same_buffer=False)
        self.bytes = 0
        self.uploaded: list = []  # what the recorded sequences only read

    def upload(self, array: np.ndarray):
        words = np.ascontiguousarray(array).reshape(-1).view(np.uint32)
        dst = self.ctx.tensor(np.zeros(max(1, words.size), np.uint32), "storage")
        algo = self.ctx.algorithm(self.copy, [self.params, self.staging, dst])
        view = self.staging.data()
        kp = self.ctx.kp
        for start in range(0, words.size, self.words):
            chunk = words[start:start + self.words]
            view[:chunk.size] = chunk
            push = np.asarray(ops.copy_words(self.ctx.caps, 0, start, chunk.size, same_buffer=False).push, np.uint32)
            self.ctx.manager.sequence().record(kp.OpAlgoDispatch(algo, push)).eval()
        self.bytes += words.size * 4
        self.uploaded.append(dst)
        return dst


class VulkanKVCache:
    """K and V of every block on the device ([n_ctx, n_head_kv, head_dim] each, as uint32 words of
    F16 pairs or F32), and the position each slot holds (-1: empty) in host-visible memory that
    the attention shader reads: Session writes cache.pos directly, as on the CPU."""

    def __init__(self, decoder: "VulkanDecoder", n_ctx: int, f16: bool = True):
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be positive, not {n_ctx}")
        ctx = decoder.ctx
        self.n_ctx, self.n_block, self.kv_dim, self.f16 = int(n_ctx), decoder.n_block, decoder.kv_dim, bool(f16)
        words = n_ctx * self.kv_dim // 2 if f16 else n_ctx * self.kv_dim
        decoder.check_fits(2 * decoder.n_gpu_block * words * 4, f"a KV cache of {n_ctx} tokens")
        self.k = [ctx.tensor(np.zeros(words, np.uint32), "storage") for _ in range(decoder.n_gpu_block)]
        self.v = [ctx.tensor(np.zeros(words, np.uint32), "storage") for _ in range(decoder.n_gpu_block)]
        # a view of mapped memory: the device's copy as the decoder's params (each pass syncs it)
        self._pos = ctx.tensor(np.full(n_ctx, -1, np.int32), decoder.params_kind)
        self.pos = self._pos.data()
        self.decoder = decoder
        self.sequences: dict = {}  # the decoder's recorded passes over this cache

    def clear(self) -> None:
        """Every slot empty (the values stay; an empty slot is never read)."""
        self.pos.fill(-1)


class VulkanDecoder:
    """Decoder(hparams, globals, blocks) of cpu_kernels (same arguments, checked by building the
    CPU decoder first), placed on a Vulkan device."""

    def __init__(self, hparams: dict, globals: dict, blocks: list, ctx: VulkanContext, max_batch: int = MAX_BATCH,
                 first_block: int = 0):
        cpu_kernels.Decoder(hparams, globals, blocks)  # validates every shape and type
        # every workgroup of every dispatch reads the pass values: host-visible memory would put a
        # trip over the bus at the start of each (PARAMS_ENV); device memory, synced once a pass, does not
        self.params_kind = params_kind()
        self.first_block = first_block  # blocks before it run elsewhere: the input is their hidden state
        self.ctx, self.caps = ctx, ctx.caps
        self.cpu_device = ctx.device_type == "cpu"  # lavapipe: its threads need the cores
        self.hparams = dict(hparams)
        hp = self.hparams
        self.n_embd, self.n_head, self.n_head_kv = hp["n_embd"], hp["n_head"], hp["n_head_kv"]
        self.head_dim, self.n_ff, self.n_vocab = hp["head_dim"], hp["n_ff"], hp["n_vocab"]
        self.n_block = len(blocks)
        self.n_gpu_block = len(blocks) - first_block
        self.q_dim, self.kv_dim = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
        self.eps = hp["norm_eps"]
        self.attn_scale = hp.get("attn_scale") or 1.0 / np.sqrt(self.head_dim)
        self.embd_scale = hp.get("embd_scale", 1.0)
        self.attn_softcap, self.final_softcap = hp.get("attn_softcap", 0.0), hp.get("final_softcap", 0.0)
        self.gelu = hp.get("act", "silu") == "gelu"
        self.max_batch = max_batch
        for _, ggml_type in [globals["tok_embd"], globals["output"]] + [b[m] for b in blocks[first_block:]
                                                                        for m in _MATRICES]:
            if int(ggml_type) not in products.REGISTRY:
                name = cpu_kernels.type_info(int(ggml_type))["name"]
                raise VulkanError(f"weight type {name} has no Vulkan kernels yet (device {self.caps.name})")
        self.check_fits(self._weight_bytes(globals, blocks) + self._activation_bytes(), "the model's weights")
        up = _Uploader(ctx)
        self._upload_all(up, globals, blocks)
        self.weight_bytes = up.bytes
        self.read_only = {id(t) for t in up.uploaded}
        self.barriers: dict[tuple[int, int], tuple[int, int]] = {}  # (B, L): (barriers, dispatches) recorded
        self.flag_counts: dict[tuple[int, int], dict[int, int]] = {}  # (B, L): {word: workgroups} of stage flags
        self._make_activations()
        # the stage flags (flags.py) after the parameters: a word counting waits that gave up, then
        # one a stage (a decode step has about 5 a block)
        self.flag_base = param_words(max_batch)
        self.params_host = np.concatenate([make_params(max_batch, n_tokens=0),
                                           np.zeros(2 + 8 * (self.n_gpu_block + 2), np.uint32)])
        self.params = ctx.tensor(self.params_host, self.params_kind)
        self.params_view = self.params.data()

    # ---- placement ----

    def check_fits(self, n_bytes: int, what: str) -> None:
        from gpt4all_core.backend.vulkan import devices
        info = devices.device_info(self.ctx.device_index)
        if info is not None:
            devices.check_fits(info, n_bytes, what)

    def _weight_bytes(self, globals, blocks) -> int:
        mats = [globals["tok_embd"], globals["output"]] + [b[m] for b in blocks[self.first_block:] for m in _MATRICES]
        return int(sum(np.asarray(d).nbytes for d, _ in mats))

    def _activation_bytes(self) -> int:
        per_token = 2 * self.n_embd + 2 * max(self.n_embd, self.q_dim) + 2 * self.kv_dim + self.q_dim \
            + 3 * self.n_ff + self.n_vocab
        return 4 * per_token * self.max_batch

    def _upload_all(self, up: _Uploader, globals: dict, blocks: list) -> None:
        def matrix(pair, n_out, n_in, under=None):
            """One weight on the device; `under`: a second of the same type stacked below it."""
            data, ggml_type = pair
            raw = cpu_kernels._raw_rows(data, "weight")
            if under is not None:
                raw = np.concatenate([raw, cpu_kernels._raw_rows(under[0], "weight")])
                n_out *= 2
            words = products.REGISTRY[int(ggml_type)].pack(raw)
            return _Matrix(up.upload(words), int(ggml_type), n_out, n_in)

        def vector(v):
            return None if v is None else up.upload(np.ascontiguousarray(v, np.float32))

        e, q, kv, ff = self.n_embd, self.q_dim, self.kv_dim, self.n_ff
        self.tok_embd = matrix(globals["tok_embd"], self.n_vocab, e) if not self.first_block else None
        same = self.tok_embd is not None and _same_array(globals["output"][0], globals["tok_embd"][0])
        self.output = self.tok_embd if same else matrix(globals["output"], self.n_vocab, e)
        self.output_norm = vector(globals["output_norm"])
        shapes = {"wq": (q, e), "wk": (kv, e), "wv": (kv, e), "wo": (e, q), "ffn_gate": (ff, e),
                  "ffn_up": (ff, e), "ffn_down": (e, ff)}
        self.blocks = []
        for blk in blocks[self.first_block:]:
            if int(blk["ffn_gate"][1]) == int(blk["ffn_up"][1]):  # one matrix: one product for both
                b = {name: matrix(blk[name], *shapes[name]) for name in _MATRICES if name not in ("ffn_gate", "ffn_up")}
                b["ffn_gate_up"] = matrix(blk["ffn_gate"], ff, e, under=blk["ffn_up"])
            else:
                b = {name: matrix(blk[name], *shapes[name]) for name in _MATRICES}
            for name in _VECTORS:
                b[name] = vector(blk.get(name))
            rope = dict(blk.get("rope") or {})
            b["rope"] = rope
            b["freqs"] = vector(ops.rope_freqs(rope, self.head_dim))  # per-dimension angles of one position
            b["window"] = int(blk.get("window", 0))
            self.blocks.append(b)

    def _make_activations(self) -> None:
        ctx, B = self.ctx, self.max_batch
        wide = max(self.n_embd, self.q_dim)

        def buf(n):
            return ctx.tensor(np.zeros(B * n, np.float32), "storage")

        self.x, self.xb = buf(self.n_embd), buf(wide)
        self.q, self.k, self.v, self.att = buf(self.q_dim), buf(self.kv_dim), buf(self.kv_dim), buf(self.q_dim)
        self.hb, self.hb2 = buf(2 * self.n_ff), buf(self.n_ff)  # gate and up (stacked or apart), act(gate) * up
        self.xl, self.xl2 = buf(self.n_embd), buf(self.n_embd)
        scratch = ops.attention_scratch_floats(self.n_head, self.head_dim, SPLIT_MAX_COLS, MAX_ATTENTION_SPLIT)
        self.att_scratch = ctx.tensor(np.zeros(scratch, np.float32), "storage")
        self.sinks = [ctx.tensor(np.zeros(256, np.uint32), "storage") for _ in range(prefetch.SINKS)]
        # zeros to start with (a storage tensor's first contents are whatever the memory held);
        # every pass leaves them zero again
        self.att_counters = ctx.tensor(np.zeros(self.n_head * SPLIT_MAX_COLS, np.uint32), "device")
        ctx.manager.sequence().record(ctx.kp.OpTensorSyncDevice([self.att_counters])).eval()
        if self.first_block:  # the hidden state of the blocks before ours arrives here
            self.x_in = ctx.tensor(np.zeros(B * self.n_embd, np.float32), "host")
            self.x_in_view = self.x_in.data()

    def new_cache(self, n_ctx: int, f16: bool = True) -> VulkanKVCache:
        return VulkanKVCache(self, n_ctx, f16)

    # ---- recording ----

    def _record(self, cache: VulkanKVCache, B: int, L: int):
        """The sequence for batches of up to B tokens, L of them wanting logits."""
        ctx, caps, kp = self.ctx, self.caps, self.ctx.kp
        seq = ctx.manager.sequence()
        if spin_wait(kp, self.cpu_device):
            seq.spin_wait = True
        if reuse_fence(kp):
            seq.reuse_fence = True
        P = self.params
        if self.params_kind == "device":  # the first dispatch's barrier orders the copy before it
            seq.record(kp.OpTensorSyncDevice([P, cache._pos]))
        order = _Ordering(self.read_only, skip=ctx.can_skip_barriers)
        # one-token steps: stage flags in place of barriers where the shaders have the form ($FLAGS_ENV)
        use_flags = B == 1 and flags.setting() and self.params_kind == "device" and ctx.can_skip_barriers
        stages = flags.Stages(self.flag_base, self.params_host.size - self.flag_base) if use_flags else None

        planned = []  # (dispatch, tensors, out, n_in, weights): recorded in order at the end, with prefetches

        def run(dispatch: Dispatch, *tensors, out=None, n_in=None, weights=None):
            """Plans the dispatch; out: the buffer (or tuple of buffers) it writes, when not the ops'
            rule (_WRITES_FIRST); n_in: a product's row length (for its stage-flag form); weights:
            the weight matrix it reads (what prefetch.py may pull into L2 before it)."""
            if out is None:
                out = tensors[0] if dispatch.shader in _WRITES_FIRST else tensors[-1]
            planned.append((dispatch, tensors, out, n_in, weights))

        def record(dispatch: Dispatch, tensors, out, n_in):
            order.dispatches += 1
            can = stages is not None and flags.capable(caps, dispatch, n_in)
            # a dispatch that cannot wait on a flag cannot join a stage whose others do: a barrier
            barrier = order.needs_barrier(tensors, out, force=stages is not None and stages.waiting and not can)
            if stages is not None:
                dispatch, barrier = stages.place(dispatch, n_in, can, barrier)
            op = kp.OpAlgoDispatch(ctx.algorithm(dispatch, [P, *tensors]))
            if not barrier:
                op.barrier = False
            seq.record(op)

        def product(w: _Matrix, x, y, cols, col_source=ops.COLS_TOKENS, accumulate=False):
            d = products.product(caps, w.type, w.n_out, w.n_in, cols)
            push = (w.n_out, w.n_in, col_source, int(accumulate))
            run(Dispatch(d.shader, d.groups, d.spec, push), w.words, x, y, n_in=w.n_in, weights=w.words)

        fuse, n_split = fuse_setting(), attention_split()

        def fused(w: _Matrix, cols, glu=None, rope=None):
            """The dispatch of rms_norm then w (glu: w is gate and up stacked; rope: a RopeOut), or
            None: unfused ($GPT4ALL_CORE_VULKAN_FUSE turns fusing off, for comparisons)."""
            if fuse == "0" or (rope is not None and fuse != "1"):
                return None
            n_out = w.n_out // 2 if glu else w.n_out
            return products.fused_product(caps, w.type, n_out, w.n_in, cols, self.eps, glu, rope)

        def normed_product(d: Dispatch, w: _Matrix, x, gamma, y, col_source=ops.COLS_TOKENS, freqs=None):
            push = (d.push[0], w.n_in, col_source, 0)
            tables = [gamma] if freqs is None else [gamma, freqs]  # freqs: the _norm_rope forms' RoPE table
            run(Dispatch(d.shader, d.groups, d.spec, push), w.words, x, y, *tables, out=y, n_in=w.n_in,
                weights=w.words)

        T, e, hd = ops.COLS_TOKENS, self.n_embd, self.head_dim
        if self.first_block:
            run(ops.copy_words(caps, 0, 0, B * e, same_buffer=False), self.x_in, self.x)
        else:
            get = products.REGISTRY[self.tok_embd.type].get_rows(caps, e, self.n_vocab, B, float(self.embd_scale))
            run(get, self.tok_embd.words, self.x)
        f16 = cache.f16
        act = "gelu" if self.gelu else "silu"
        for l, b in enumerate(self.blocks):
            qkv = ((b["wq"], self.q), (b["wk"], self.k), (b["wv"], self.v))
            stores = self._rope_outs(b, f16)
            one_pass = [fused(w, B, rope=t) for (w, _), t in zip(qkv, stores)] if stores else [None]
            if all(one_pass):  # decoding, plain llama blocks: q rotated, k rotated into the cache, v into it
                for d, (w, _), out in zip(one_pass, qkv, (self.q, cache.k[l], cache.v[l])):
                    normed_product(d, w, self.x, b["attn_norm"], out, freqs=b["freqs"])
            else:
                self._attention_in(run, product, fused, normed_product, b, cache.k[l], cache.v[l], f16, B)
            args = (caps, self.n_head, self.n_head_kv, hd, f16, b["window"], float(self.attn_scale),
                    float(self.attn_softcap), True, B)
            split = B <= SPLIT_MAX_COLS and n_split > 1  # few tokens: more workgroups, each over a part of the cache
            if split and fuse == "1":
                run(ops.attention_split_merged(*args, n_split), self.q, cache.k[l], cache.v[l], cache._pos,
                    self.att_scratch, self.att_counters, self.att, out=(self.att_scratch, self.att_counters, self.att))
            elif split:
                first, merge = ops.attention_split(*args, n_split)
                run(first, self.q, cache.k[l], cache.v[l], cache._pos, self.att_scratch)
                run(merge, self.att_scratch, self.att)
            else:
                run(ops.attention(*args), self.q, cache.k[l], cache.v[l], cache._pos, self.att)
            self._sublayer_out(run, product, b["wo"], self.att, b["bo"], b["attn_post_norm"], B)
            hidden = self._feed_forward_in(run, product, fused, normed_product, b, act, B)
            self._sublayer_out(run, product, b["ffn_down"], hidden, None, b["ffn_post_norm"], B)
        logits = None
        if L:
            xl = self.x  # one token: it is the row that wants logits (a gather and a barrier fewer)
            if B > 1:
                xl = self.xl
                run(ops.gather_rows(caps, e, L), self.x, xl)
            logits = ctx.tensor(np.zeros(L * self.n_vocab, np.float32), "device")
            d = fused(self.output, L)
            if d is not None:
                normed_product(d, self.output, xl, self.output_norm, logits, ops.COLS_LOGITS)
            else:
                run(ops.rms_norm(caps, e, 1, ops.COLS_LOGITS, self.eps, L), xl, self.output_norm, self.xl2)
                product(self.output, self.xl2, logits, L, ops.COLS_LOGITS)
            if self.final_softcap > 0:
                run(ops.softcap(caps, self.n_vocab, ops.COLS_LOGITS, float(self.final_softcap), L), logits)
        # prefetches at the ends of stages: where no stage flags replace the barriers ($PREFETCH_ENV)
        budget = prefetch.budget_bytes() if stages is None and ctx.can_skip_barriers else 0
        if budget:
            probe = _Ordering(self.read_only, skip=True)
            barriers = [probe.needs_barrier(tensors, out) for _, tensors, out, _, _ in planned]
            chunks = prefetch.plan(barriers, [p[4] for p in planned], lambda w: w.size(), budget)
        else:
            chunks = {}
        for i, (dispatch, tensors, out, n_in, _) in enumerate(planned):
            record(dispatch, tensors, out, n_in)
            for c in chunks.get(i, ()):
                record(ops.prefetch(caps, c.offset4, c.n4), (c.weights, self.sinks[c.sink]), self.sinks[c.sink], None)
        if L:
            seq.record(kp.OpTensorSyncLocal([logits]))
        waits = 0
        if stages is not None and stages.waits:
            seq.record(kp.OpTensorSyncLocal([P]))  # the flags back, for the count of waits that gave up
            waits = stages.waits
            self.flag_counts[(B, L)] = dict(stages.expected)
        self.barriers[(B, L)] = (order.barriers - waits, order.dispatches)
        return seq, logits

    def _rope_outs(self, b: dict, f16: bool) -> tuple | None:
        """Where the q, k and v products of block b would put their outputs themselves (the
        fused _norm_rope forms), or None: b has biases or q/k norms between the products and RoPE,
        or NEOX pairs (rows a head_dim / 2 apart, seldom one workgroup's)."""
        if any(b[name] is not None for name in ("bq", "bk", "bv", "attn_q_norm", "attn_k_norm")):
            return None
        n_rot, neox, mscale = ops.rope_rotation(b["rope"], self.head_dim)
        if neox or self.head_dim % 2:
            return None
        hd = self.head_dim
        return (products.RopeOut(hd, n_rot, False, f16, mscale), products.RopeOut(hd, n_rot, True, f16, mscale),
                products.RopeOut(hd, 0, True, f16))

    def _attention_in(self, run, product, fused, normed_product, b, k_cache, v_cache, f16, B):
        """Records q (rotated, into self.q), and k (rotated) and v into their cache slots: the
        norm fused into the products when decoding, then biases, q/k norms, RoPE and the stores."""
        caps, T, e, hd = self.caps, ops.COLS_TOKENS, self.n_embd, self.head_dim
        qkv = ((b["wq"], self.q), (b["wk"], self.k), (b["wv"], self.v))
        one_pass = [fused(w, B) for w, _ in qkv]
        if all(one_pass):  # decoding: each product normalizes the x it reads
            for d, (w, out) in zip(one_pass, qkv):
                normed_product(d, w, self.x, b["attn_norm"], out)
        else:
            run(ops.rms_norm(caps, e, 1, T, self.eps, B), self.x, b["attn_norm"], self.xb)
            for w, out in qkv:
                product(w, self.xb, out, B)
        for bias, out, n in (("bq", self.q, self.q_dim), ("bk", self.k, self.kv_dim), ("bv", self.v, self.kv_dim)):
            if b[bias] is not None:
                run(ops.add_bias(caps, n, T, B), out, b[bias])
        if b["attn_q_norm"] is not None:
            run(ops.rms_norm(caps, hd, self.n_head, T, self.eps, B), self.q, b["attn_q_norm"], self.q)
        if b["attn_k_norm"] is not None:
            run(ops.rms_norm(caps, hd, self.n_head_kv, T, self.eps, B), self.k, b["attn_k_norm"], self.k)
        run(ops.rope(caps, self.n_head, hd, b["rope"], B), self.q, b["freqs"])
        if f16 and hd % 2:  # a head is not whole words of halves
            run(ops.rope(caps, self.n_head_kv, hd, b["rope"], B), self.k, b["freqs"])
            run(ops.kv_store(caps, self.kv_dim, f16, B), self.k, k_cache)
        else:  # one dispatch and no barrier: keys rotated straight into the cache
            run(ops.rope_store(caps, self.n_head_kv, hd, f16, b["rope"], B), self.k, b["freqs"], k_cache)
        run(ops.kv_store(caps, self.kv_dim, f16, B), self.v, v_cache)

    def _feed_forward_in(self, run, product, fused, normed_product, b, act, B):
        """Records act(gate) * up of the normalized x; returns the buffer holding it. Decoding with
        the two matrices stacked: one dispatch; prompts: the norm, one product, the activation."""
        caps, T, e, ff = self.caps, ops.COLS_TOKENS, self.n_embd, self.n_ff
        gate_up = b.get("ffn_gate_up")
        d = fused(gate_up, B, act) if gate_up is not None else None
        if d is not None:
            normed_product(d, gate_up, self.x, b["ffn_norm"], self.hb2)
            return self.hb2
        run(ops.rms_norm(caps, e, 1, T, self.eps, B), self.x, b["ffn_norm"], self.xb)
        if gate_up is not None:  # [B, 2 n_ff]: gate then up in each token's row
            product(gate_up, self.xb, self.hb, B)
            run(ops.glu_split(caps, ff, T, B, gelu=act == "gelu"), self.hb2, self.hb)
            return self.hb2
        product(b["ffn_gate"], self.xb, self.hb, B)
        product(b["ffn_up"], self.xb, self.hb2, B)
        run((ops.gelu_mul if act == "gelu" else ops.swiglu)(caps, ff, T, B), self.hb, self.hb2)
        return self.hb

    def _sublayer_out(self, run, product, w, inp, bias, post_norm, B):
        """x += norm(w inp + bias): straight into the residual when there is no norm after."""
        caps, T, e = self.caps, ops.COLS_TOKENS, self.n_embd
        if post_norm is None:
            product(w, inp, self.x, B, accumulate=True)
            if bias is not None:
                run(ops.add_bias(caps, e, T, B), self.x, bias)
            return
        product(w, inp, self.xb, B)
        if bias is not None:
            run(ops.add_bias(caps, e, T, B), self.xb, bias)
        run(ops.rms_norm(caps, e, 1, T, self.eps, B), self.xb, post_norm, self.xb)
        run(ops.add(caps, e, T, B), self.x, self.xb)

    # ---- running ----

    def forward(self, cache: VulkanKVCache, tokens, positions, slots, n_kv: int, n_logits: int = 1, n_threads=None,
                kv_ranges=None, logit_rows=None, hidden=None) -> np.ndarray:
        """As cpu_kernels.Decoder.forward: runs tokens at positions into cache slots, attending over
        slots [0, n_kv) (or each token's kv_ranges), and returns float32 logits of the last n_logits
        tokens (or of logit_rows, in that order). hidden: the input [n, n_embd] when the first
        blocks ran elsewhere (first_block > 0)."""
        if not isinstance(cache, VulkanKVCache) or cache.decoder is not self:
            raise ValueError("cache: made for another model or device (use decoder.new_cache)")
        if (hidden is None) != (self.first_block == 0):
            raise ValueError("hidden: the input of a decoder whose first blocks run elsewhere, and only then")
        tok, pos, sl, rng, rows = _check_batch(self.n_vocab, cache.n_ctx, tokens, positions, slots, n_kv, n_logits,
                                               kv_ranges, logit_rows)
        n = tok.shape[0]
        if rng is None:
            rng = np.tile(np.array([0, n_kv], np.int32), (n, 1))
        cache.pos[sl] = pos
        out = np.empty((rows.shape[0], self.n_vocab), np.float32)
        for start in range(0, n, self.max_batch):
            stop = min(n, start + self.max_batch)
            mine = np.nonzero((rows >= start) & (rows < stop))[0]
            if self.first_block:
                self.x_in_view[:(stop - start) * self.n_embd] = hidden[start:stop].reshape(-1)
            out[mine] = self._pass(cache, tok[start:stop], pos[start:stop], sl[start:stop], rng[start:stop], n_kv,
                                   rows[mine] - start)
        return out

    def _pass(self, cache, tok, pos, sl, rng, n_kv, rows) -> np.ndarray:
        n, n_logits = tok.shape[0], rows.shape[0]
        B, L = _bucket(n, self.max_batch), _bucket(n_logits, self.max_batch)
        key = (B, L)
        if key not in cache.sequences:
            cache.sequences[key] = self._record(cache, B, L)
        seq, logits = cache.sequences[key]
        fill_params(self.params_view, n_tokens=n, n_kv=n_kv, n_logits=n_logits, tokens=tok, pos=pos, slots=sl,
                    kv_lo=rng[:, 0], kv_hi=rng[:, 1], logit_rows=rows)
        flagged = key in self.flag_counts
        if flagged:
            self.params_view[self.flag_base:] = 0
        seq.eval()
        if flagged and self.params_view[self.flag_base]:
            raise VulkanError(f"{int(self.params_view[self.flag_base])} workgroups on {self.caps.name} gave up waiting "
                              f"for the dispatch before them: this device does not run them side by side; "
                              f"set ${flags.FLAGS_ENV}=0")
        if not n_logits:
            return np.empty((0, self.n_vocab), np.float32)
        return np.array(logits.data()[:n_logits * self.n_vocab], copy=True).reshape(n_logits, self.n_vocab)

    def shift(self, cache: VulkanKVCache, dst: int, src: int, count: int, delta: int, n_threads=None,
              move_pos: bool = True) -> None:
        """Moves the K/V of slots [src, src + count) to [dst, ...), positions shifted by delta and keys
        re-rotated (context erase without re-evaluation), as the CPU decoder's shift."""
        if count < 0 or dst < 0 or src < 0 or dst + count > cache.n_ctx or src + count > cache.n_ctx:
            raise ValueError(f"slots [{src}, {src + count}) -> [{dst}, ...) do not fit a cache of {cache.n_ctx}")
        if count == 0:
            return
        ctx, caps, kp = self.ctx, self.caps, self.ctx.kp
        row = self.kv_dim // 2 if cache.f16 else self.kv_dim
        tmp = ctx.tensor(np.zeros(count * row, np.uint32), "storage")
        params = ctx.tensor(make_params(1, n_tokens=0), "host")
        seq = ctx.manager.sequence()
        for l, b in enumerate(self.blocks):
            for buf in (cache.k[l], cache.v[l]):  # through a temporary: the ranges may overlap
                out = ops.copy_words(caps, src * row, 0, count * row, same_buffer=False)
                back = ops.copy_words(caps, 0, dst * row, count * row, same_buffer=False)
                seq.record(kp.OpAlgoDispatch(ctx.algorithm(out, [params, buf, tmp])))
                seq.record(kp.OpAlgoDispatch(ctx.algorithm(back, [params, tmp, buf])))
            if delta:
                rot = ops.rope_cache(caps, self.n_head_kv, self.head_dim, cache.f16, b["rope"], dst, count, delta)
                seq.record(kp.OpAlgoDispatch(ctx.algorithm(rot, [params, cache.k[l], b["freqs"]])))
        seq.eval()
        if not move_pos:  # a split model's CPU part moves the shared positions
            return
        pos = cache.pos
        moved = pos[src:src + count].copy()
        pos[dst:dst + count] = moved + delta
        if src > dst:
            pos[dst + count:src + count] = -1  # vacated


# ops that update their first buffer in place (the others write their last)
_WRITES_FIRST = frozenset({"add", "add_bias", "swiglu", "gelu_mul", "swiglu_split", "gelu_mul_split", "scale",
                           "softcap", "rope"})


class _Ordering:
    """Which dispatches of a recorded sequence need the barrier before them (Kompute's, as
    tools/kp_patch.py makes it: one global memory barrier, every earlier shader write before the
    dispatch's reads and writes). A dispatch needs it when it touches a buffer written since the
    last barrier (read after write, write after write) or writes one read since then (write after
    read). The others run without waiting: the q, k and v products, gate and up, the keys' RoPE
    into the cache and the values' store. The first dispatch always waits (for what the previous
    submission wrote); read_only buffers (weights, norms, RoPE tables) are never written in a
    sequence. skip=False (a kp without the patch's flag): every dispatch keeps its barrier."""

    def __init__(self, read_only: set[int], skip: bool):
        self.read_only, self.skip, self.first = read_only, skip, True
        self.written: set[int] = set()  # since the last barrier
        self.read: set[int] = set()
        self.barriers = self.dispatches = 0

    def needs_barrier(self, tensors, out, force: bool = False) -> bool:
        ids = {id(t) for t in tensors} - self.read_only
        w = {id(o) for o in (out if isinstance(out, tuple) else (out,))} - self.read_only
        barrier = force or self.first or not self.skip or bool(ids & self.written) or bool(w & self.read)
        if barrier:
            self.written, self.read = set(), set()
            self.barriers += 1
        self.first = False
        self.read |= ids - w
        self.written |= w
        return barrier


def _same_array(a, b) -> bool:
    """Tied embeddings: the output projection is the embedding table itself (then uploaded once)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and a.nbytes == b.nbytes


_MATRICES = ("wq", "wk", "wv", "wo", "ffn_gate", "ffn_up", "ffn_down")
_VECTORS = ("attn_norm", "attn_q_norm", "attn_k_norm", "attn_post_norm", "bq", "bk", "bv", "bo", "ffn_norm",
            "ffn_post_norm")


def _check_batch(n_vocab, n_ctx, tokens, positions, slots, n_kv, n_logits, kv_ranges, logit_rows):
    """The CPU decoder's argument checks, with the same messages."""
    tok = np.ascontiguousarray(tokens, dtype=np.int32).reshape(-1)
    n = tok.shape[0]
    if n == 0:
        raise ValueError("tokens: at least one token is needed")
    if tok.min() < 0 or tok.max() >= n_vocab:
        raise ValueError(f"tokens: ids must lie in [0, {n_vocab}), got {tok.min()}..{tok.max()}")
    pos = np.ascontiguousarray(positions, dtype=np.int32).reshape(-1)
    sl = np.ascontiguousarray(slots, dtype=np.int32).reshape(-1)
    for name, a in (("positions", pos), ("slots", sl)):
        if a.shape[0] != n:
            raise ValueError(f"{name}: expected {n} values, got {a.shape[0]}")
    if not 0 < n_kv <= n_ctx:
        raise ValueError(f"n_kv must lie in [1, {n_ctx}], not {n_kv}")
    if sl.min() < 0 or sl.max() >= n_kv:
        raise ValueError(f"slots must lie in [0, n_kv = {n_kv}), got {sl.min()}..{sl.max()}")
    if len(np.unique(sl)) != n:
        raise ValueError("slots: each token needs a slot of its own")
    rng = None
    if kv_ranges is not None:
        rng = np.ascontiguousarray(kv_ranges, dtype=np.int32).reshape(n, 2)
        if np.any(rng[:, 0] < 0) or np.any(rng[:, 1] > n_kv) or np.any(rng[:, 0] > rng[:, 1]):
            raise ValueError(f"kv_ranges must lie within [0, n_kv = {n_kv}]")
        if np.any(sl < rng[:, 0]) or np.any(sl >= rng[:, 1]):
            raise ValueError("slots: each token's slot must lie in its own kv_ranges [lo, hi)")
    if logit_rows is not None:
        rows = np.ascontiguousarray(logit_rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"logit_rows must lie in [0, {n}), got {rows.min()}..{rows.max()}")
    else:
        if not 0 <= n_logits <= n:
            raise ValueError(f"n_logits must lie in [0, {n}], not {n_logits}")
        rows = np.arange(n - n_logits, n)
    return tok, pos, sl, rng, rows.astype(np.int32)


class SplitKVCache:
    """A split model's cache: the CPU part's blocks in a cpu_kernels.KVCache, the GPU part's on the
    device, one array of slot positions shared by both."""

    def __init__(self, decoder: "SplitDecoder", n_ctx: int, f16: bool = True):
        self.gpu = decoder.gpu.new_cache(n_ctx, f16)
        self.cpu = cpu_kernels.KVCache(decoder.cpu, n_ctx, f16, pos=self.gpu.pos)
        self.n_ctx, self.pos = self.gpu.n_ctx, self.gpu.pos

    def clear(self) -> None:
        self.pos.fill(-1)


class SplitDecoder:
    """The first blocks on the CPU, the last ngl blocks and the output head on a Vulkan device
    (llama.cpp's n_gpu_layers): each batch runs the CPU blocks, then hands their hidden state over."""

    def __init__(self, hparams: dict, globals: dict, blocks: list, ctx: VulkanContext, ngl: int):
        k = len(blocks) - ngl
        self.cpu = cpu_kernels.Decoder(hparams, globals, blocks[:k])
        self.gpu = VulkanDecoder(hparams, globals, blocks, ctx, first_block=k)
        self.hparams, self.n_vocab, self.n_block = self.gpu.hparams, self.gpu.n_vocab, len(blocks)

    def new_cache(self, n_ctx: int, f16: bool = True) -> SplitKVCache:
        return SplitKVCache(self, n_ctx, f16)

    def forward(self, cache: SplitKVCache, tokens, positions, slots, n_kv: int, n_logits: int = 1, n_threads=None,
                kv_ranges=None, logit_rows=None) -> np.ndarray:
        hidden = self.cpu.forward_hidden(cache.cpu, tokens, positions, slots, n_kv, n_threads, kv_ranges)
        return self.gpu.forward(cache.gpu, tokens, positions, slots, n_kv, n_logits, n_threads, kv_ranges, logit_rows,
                                hidden=hidden)

    def shift(self, cache: SplitKVCache, dst: int, src: int, count: int, delta: int, n_threads=None) -> None:
        self.gpu.shift(cache.gpu, dst, src, count, delta, move_pos=False)
        self.cpu.shift(cache.cpu, dst, src, count, delta, n_threads)


def make_decoder(hparams: dict, globals: dict, blocks: list, device, ngl: int):
    """The decoder for a Vulkan device: all of it there when ngl covers every block, else split."""
    from gpt4all_core.backend.vulkan.context import get_context
    ctx = get_context(device.index)
    if ngl >= len(blocks):
        return VulkanDecoder(hparams, globals, blocks, ctx)
    return SplitDecoder(hparams, globals, blocks, ctx, ngl)
