# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The token sampler's C core: GPT4All's chain over float32 logits, without Python objects in its loops.

sampling.py documents the chain and where it comes from; this file holds the loops. Every stage
works on a candidate list (values and token ids in scratch buffers the core owns), never on the
caller's logits, which are only read.

Candidates that must be ordered are ordered by (value descending, id ascending): equal values go
to the lowest id, so results never depend on a sort's whims (llama.cpp's std::partial_sort leaves
ties in an unspecified order).
"""
from libc.math cimport expf, log, logf, INFINITY
from libc.float cimport FLT_MAX
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

import numpy as np

# Error codes returned by the nogil stages (the Python side turns them into ValueError).
cdef enum:
    ERR_NONFINITE = -1     # a logit is NaN or +inf
    ERR_TOKEN_ID = -2      # a history id is outside [0, n_vocab)
    ERR_ALL_MASKED = -3    # every logit is -inf: there is nothing to sample

cdef enum:
    TOP_P_FIRST_GUESS = 256   # a nucleus (or its crossing bucket) usually fits here; grown x8 if not
    N_BUCKETS = 256           # top-p's logit histogram on an unsorted list
    TOP_P_RANGE = 32          # it spans 32 logits below the max (e^-32 ~ 1e-14 of the max's mass)


# --- the random numbers: xoshiro256** seeded by splitmix64 -------------------------------------
# Our own generator, so a seed gives the same stream on every platform and compiler
# (std::mt19937 plus std::uniform_real_distribution does not promise that).

cdef struct Rng:
    uint64_t s0, s1, s2, s3

cdef inline uint64_t splitmix64(uint64_t *state) noexcept nogil:
    state[0] += 0x9E3779B97F4A7C15ULL
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)

cdef void rng_seed(Rng *rng, uint64_t seed) noexcept nogil:
    # splitmix64 spreads any seed (0 included) over the 256-bit state, which is then never all zero
    rng.s0 = splitmix64(&seed)
    rng.s1 = splitmix64(&seed)
    rng.s2 = splitmix64(&seed)
    rng.s3 = splitmix64(&seed)

cdef inline uint64_t rotl(uint64_t x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))

cdef inline uint64_t rng_next(Rng *rng) noexcept nogil:
    cdef uint64_t result = rotl(rng.s1 * 5, 7) * 9
    cdef uint64_t t = rng.s1 << 17
    rng.s2 ^= rng.s0
    rng.s3 ^= rng.s1
    rng.s1 ^= rng.s2
    rng.s0 ^= rng.s3
    rng.s2 ^= t
    rng.s3 = rotl(rng.s3, 45)
    return result

cdef inline double rng_uniform(Rng *rng) noexcept nogil:
    """A double in [0, 1): the top 53 bits, so every value is exact."""
    return <double>(rng_next(rng) >> 11) * (1.0 / 9007199254740992.0)


# --- the repeat penalty -----------------------------------------------------------------------

cdef inline float penalized(float v, float penalty) noexcept nogil:
    # llama.cpp's rule: dividing a negative logit would raise it, so those are multiplied.
    # The arithmetic stays float32, as in llama.cpp.
    cdef float out = v * penalty if v <= 0 else v / penalty
    return FLT_MAX if out > FLT_MAX else out   # a penalty below 1 must not make +inf

cdef Py_ssize_t collect_penalties(const float *logits, Py_ssize_t n, const int64_t *window,
                                  Py_ssize_t wlen, Py_ssize_t repeat_from, float penalty, float presence,
                                  float frequency, uint32_t *stamp, uint32_t epoch, int32_t *where,
                                  int32_t *counts, int32_t *pen_ids, float *pen_vals) noexcept nogil:
    """The distinct tokens of the window with their penalized logits; marks them in stamp.

    The repeat penalty goes once to each distinct token of window[repeat_from:], however often it
    repeats, as llama.cpp; then, as OpenAI's and llama.cpp's presence and frequency penalties,
    logit -= frequency * count + presence for every token of the whole window (count: its
    occurrences). GPT4All leaves those two at 0. Returns their number, or ERR_TOKEN_ID.
    """
    cdef Py_ssize_t i, j, npen = 0
    cdef int64_t tok
    cdef float v
    for i in range(wlen):
        tok = window[i]
        if tok < 0 or tok >= n:
            return ERR_TOKEN_ID
        if stamp[tok] != epoch:
            stamp[tok] = epoch
            where[tok] = <int32_t>npen
            pen_ids[npen] = <int32_t>tok
            counts[npen] = 0
            pen_vals[npen] = 0   # 1: seen in the repeat window
            npen += 1
        j = where[tok]
        counts[j] += 1
        if i >= repeat_from:
            pen_vals[j] = 1
    for j in range(npen):
        v = logits[pen_ids[j]]
        if pen_vals[j] != 0:
            v = penalized(v, penalty)
        if presence != 0 or frequency != 0:
            v = v - (<float>counts[j] * frequency + presence)
        pen_vals[j] = v
    return npen


# --- partial selection: the k best by (value desc, id asc) with a bounded heap ----------------
# The heap keeps its worst element on top, so most of a large vocabulary is rejected by one
# comparison against it: O(n + k log k) rather than a full sort's O(n log n).

cdef inline bint worse(float va, int32_t ia, float vb, int32_t ib) noexcept nogil:
    return va < vb or (va == vb and ia > ib)

cdef void sift_down(float *hv, int32_t *hi, Py_ssize_t size, Py_ssize_t pos) noexcept nogil:
    cdef float v = hv[pos]
    cdef int32_t id = hi[pos]
    cdef Py_ssize_t c
    while True:
        c = 2 * pos + 1
        if c >= size:
            break
        if c + 1 < size and worse(hv[c + 1], hi[c + 1], hv[c], hi[c]):
            c += 1
        if not worse(hv[c], hi[c], v, id):
            break
        hv[pos] = hv[c]
        hi[pos] = hi[c]
        pos = c
    hv[pos] = v
    hi[pos] = id

cdef void sift_up(float *hv, int32_t *hi, Py_ssize_t pos) noexcept nogil:
    cdef float v = hv[pos]
    cdef int32_t id = hi[pos]
    cdef Py_ssize_t parent
    while pos > 0:
        parent = (pos - 1) // 2
        if not worse(v, id, hv[parent], hi[parent]):
            break
        hv[pos] = hv[parent]
        hi[pos] = hi[parent]
        pos = parent
    hv[pos] = v
    hi[pos] = id

cdef inline void heap_offer(float *hv, int32_t *hi, Py_ssize_t *size, Py_ssize_t k,
                            float v, int32_t id) noexcept nogil:
    if size[0] < k:
        hv[size[0]] = v
        hi[size[0]] = id
        size[0] += 1
        sift_up(hv, hi, size[0] - 1)
    elif worse(hv[0], hi[0], v, id):
        hv[0] = v
        hi[0] = id
        sift_down(hv, hi, k, 0)

cdef void heap_sort_best_first(float *hv, int32_t *hi, Py_ssize_t size) noexcept nogil:
    # popping the worst to the end, repeatedly, leaves the best at index 0
    cdef float tv
    cdef int32_t ti
    while size > 1:
        size -= 1
        tv = hv[0]; hv[0] = hv[size]; hv[size] = tv
        ti = hi[0]; hi[0] = hi[size]; hi[size] = ti
        sift_down(hv, hi, size, 0)

cdef Py_ssize_t select_top(const float *vals, const int32_t *ids, Py_ssize_t n, Py_ssize_t k,
                           const uint32_t *stamp, uint32_t epoch,
                           const int32_t *pen_ids, const float *pen_vals, Py_ssize_t npen,
                           float *out_v, int32_t *out_i) noexcept nogil:
    """The min(k, n) best of vals (ids[i], or i where ids is NULL), best first, in out_v/out_i.

    ids must ascend (they do: the vocabulary order, or a filtered copy of it), so an element
    equal to the heap's worst is itself worse and the fast path may reject it. Tokens marked in
    stamp are skipped in the scan and offered afterwards with their penalized values. Returns
    the count, ERR_NONFINITE or ERR_ALL_MASKED.
    """
    cdef Py_ssize_t i, size = 0
    cdef float v
    cdef int32_t id
    if k > n:
        k = n
    for i in range(n):
        v = vals[i]
        if size == k and v <= out_v[0]:
            continue   # the common case; NaN and +inf fail this test and are caught below
        if not (v < INFINITY):
            return ERR_NONFINITE
        id = <int32_t>i if ids == NULL else ids[i]
        if stamp != NULL and stamp[id] == epoch:
            continue
        heap_offer(out_v, out_i, &size, k, v, id)
    for i in range(npen):
        heap_offer(out_v, out_i, &size, k, pen_vals[i], pen_ids[i])
    heap_sort_best_first(out_v, out_i, size)
    if size == 0 or out_v[0] == -INFINITY:
        return ERR_ALL_MASKED
    return size

cdef Py_ssize_t copy_all(const float *logits, Py_ssize_t n, const int32_t *pen_ids,
                         const float *pen_vals, Py_ssize_t npen,
                         float *out_v, int32_t *out_i) noexcept nogil:
    """Every token as a candidate, in id order, penalties applied. Returns n or ERR_NONFINITE."""
    cdef Py_ssize_t i
    cdef float v
    cdef bint bad = False
    for i in range(n):
        v = logits[i]
        bad |= not (v < INFINITY)
        out_v[i] = v
        out_i[i] = <int32_t>i
    if bad:
        return ERR_NONFINITE
    for i in range(npen):
        out_v[pen_ids[i]] = pen_vals[i]
    return n


# --- the filters, on a candidate list --------------------------------------------------------

cdef struct Cands:
    float *v
    int32_t *ids
    Py_ssize_t m
    bint sorted     # best first, by (value desc, id asc)

cdef float cands_max(const Cands *c) noexcept nogil:
    if c.sorted:
        return c.v[0]
    cdef float best = -INFINITY
    cdef Py_ssize_t i
    for i in range(c.m):
        if c.v[i] > best:
            best = c.v[i]
    return best

cdef double exp_sum(const float *v, Py_ssize_t m, float shift) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t i
    for i in range(m):
        total += expf(v[i] - shift)
    return total

cdef Py_ssize_t nucleus_size(const float *v, Py_ssize_t m, float shift, double target) noexcept nogil:
    """How many of these best-first values reach target mass; 0 when all of them do not."""
    cdef double cum = 0.0
    cdef Py_ssize_t i
    for i in range(m):
        cum += expf(v[i] - shift)
        if cum >= target:
            return i + 1
    return 0

cdef Py_ssize_t best_first_prefix(const float *v, const int32_t *ids, Py_ssize_t m, float shift,
                                  double target, float *out_v, int32_t *out_i) noexcept nogil:
    """The best-first prefix of (v, ids) that reaches target mass, into out; all m when the whole
    list falls short by rounding. Selects the best 256, then 2048, ... rather than sorting all."""
    cdef Py_ssize_t k = TOP_P_FIRST_GUESS, got, keep
    while True:
        got = select_top(v, ids, m, k, NULL, 0, NULL, NULL, 0, out_v, out_i)
        if got < 0:
            return got
        keep = nucleus_size(out_v, got, shift, target)
        if keep:
            return keep
        if got == m:
            return m
        k *= 8

cdef inline Py_ssize_t bucket_of(float v, float shift, float scale) noexcept nogil:
    # -inf and everything below the bucketed range land in the last bucket (no UB float->int cast)
    cdef float d = (shift - v) * scale
    return N_BUCKETS - 1 if not (d < N_BUCKETS - 1) else <Py_ssize_t>d

cdef Py_ssize_t top_p_unsorted(Cands *c, float shift, double target, float *w,
                               float *tmp_v, int32_t *tmp_i, float *sel_v, int32_t *sel_i) noexcept nogil:
    """Top-p on a list in id order without sorting it: its probability mass is bucketed by logit
    (N_BUCKETS buckets over the TOP_P_RANGE below the max); buckets above the one where the mass
    crosses target are kept whole, and only that bucket's tokens are ordered. The kept set is the
    sorted definition's; it goes to sel (the whole buckets in id order, then the crossing one's
    prefix best first)."""
    cdef double mass[N_BUCKETS]
    cdef Py_ssize_t i, b, crossing = N_BUCKETS - 1, n_above = 0, n_cross = 0, keep
    cdef double cum = 0.0
    cdef float lowest = shift
    for i in range(c.m):
        if c.v[i] < lowest and c.v[i] > -INFINITY:
            lowest = c.v[i]
    cdef float span = min(shift - lowest, <float>TOP_P_RANGE)
    cdef float scale = (N_BUCKETS - 1) / span if span > 0 else 0.0
    for b in range(N_BUCKETS):
        mass[b] = 0.0
    for i in range(c.m):
        mass[bucket_of(c.v[i], shift, scale)] += w[i]
    for b in range(N_BUCKETS):
        if cum + mass[b] >= target:
            crossing = b
            break
        cum += mass[b]
    for i in range(c.m):
        b = bucket_of(c.v[i], shift, scale)
        if b < crossing:
            sel_v[n_above] = c.v[i]
            sel_i[n_above] = c.ids[i]
            n_above += 1
        elif b == crossing:
            tmp_v[n_cross] = c.v[i]
            tmp_i[n_cross] = c.ids[i]
            n_cross += 1
    keep = best_first_prefix(tmp_v, tmp_i, n_cross, shift, target - cum, sel_v + n_above, sel_i + n_above)
    if keep < 0:
        return keep
    c.v = sel_v
    c.ids = sel_i
    c.m = n_above + keep
    return c.m

cdef Py_ssize_t top_p(Cands *c, float p, float *w, float *tmp_v, int32_t *tmp_i,
                      float *sel_v, int32_t *sel_i) noexcept nogil:
    """llama.cpp's top-p (min_keep 1): the shortest best-first prefix whose softmax mass (at
    temperature 1) is >= p, the token that crosses p included; at p >= 1 nothing."""
    if p >= 1.0 or c.m <= 1:
        return c.m
    cdef float shift = cands_max(c)
    cdef double total = 0.0
    cdef Py_ssize_t i, keep
    if c.sorted:
        keep = nucleus_size(c.v, c.m, shift, <double>p * exp_sum(c.v, c.m, shift))
        if keep:   # else rounding left p unmet: all stay, as in llama.cpp
            c.m = keep
        return c.m
    for i in range(c.m):
        w[i] = expf(c.v[i] - shift)
        total += w[i]
    return top_p_unsorted(c, shift, <double>p * total, w, tmp_v, tmp_i, sel_v, sel_i)

cdef Py_ssize_t min_p(Cands *c, float p) noexcept nogil:
    """llama.cpp's min-p (min_keep 1): keep logit >= max + log(p), i.e. prob >= p * max prob.
    Compacts in place, keeping the order; the best token always passes."""
    if p <= 0.0:
        return c.m
    cdef float threshold = cands_max(c) + logf(p)
    cdef Py_ssize_t i, j = 0
    for i in range(c.m):
        if c.v[i] >= threshold:
            c.v[j] = c.v[i]
            c.ids[j] = c.ids[i]
            j += 1
    c.m = j
    return j

cdef double temperature_weights(const Cands *c, float temp, float *w) noexcept nogil:
    """Unnormalized softmax(v / temp) into w; returns the sum. (v - max) / temp rather than
    v / temp - max / temp: a tiny temp overflows the latter to inf - inf."""
    cdef float shift = cands_max(c)
    cdef double total = 0.0
    cdef Py_ssize_t i
    for i in range(c.m):
        w[i] = expf((c.v[i] - shift) / temp)
        total += w[i]
    return total

cdef Py_ssize_t draw(const float *w, Py_ssize_t m, double total, double u) noexcept nogil:
    """The first index whose running sum passes u * total. Strictly passes: a zero weight
    (an -inf logit) is never drawn. Rounding can leave the target unmet: then the last
    index with weight."""
    cdef double target = u * total, cum = 0.0
    cdef Py_ssize_t i, last = 0
    for i in range(m):
        if w[i] > 0:
            cum += w[i]
            last = i
            if cum > target:
                return i
    return last


# --- the core object ---------------------------------------------------------------------------

cdef class SamplerCore:
    """Parameters, generator state and scratch of one Sampler. Not thread-safe: one per thread."""
    cdef Rng rng
    cdef float temp, top_p, min_p, repeat_penalty, presence, frequency
    cdef Py_ssize_t top_k
    cdef Py_ssize_t n_alloc
    cdef uint32_t epoch
    cdef uint32_t[::1] stamp
    cdef int32_t[::1] pen_i, cand_i, sel_i, tmp_i, where, counts
    cdef float[::1] pen_v, cand_v, sel_v, tmp_v, weights

    def __cinit__(self, double temp, Py_ssize_t top_k, double top_p, double min_p,
                  double repeat_penalty, uint64_t seed, double presence=0.0, double frequency=0.0):
        self.temp = <float>temp
        self.presence = <float>presence
        self.frequency = <float>frequency
        self.top_k = top_k
        self.top_p = <float>top_p
        self.min_p = <float>min_p
        self.repeat_penalty = <float>repeat_penalty
        rng_seed(&self.rng, seed)
        self.n_alloc = 0
        self.epoch = 0

    cdef void ensure_scratch(self, Py_ssize_t n):
        if n == self.n_alloc:
            return
        self.stamp = np.zeros(n, np.uint32)
        self.epoch = 0
        self.pen_i, self.cand_i, self.sel_i, self.tmp_i, self.where, self.counts = [np.empty(n, np.int32)
                                                                                    for _ in range(6)]
        self.pen_v, self.cand_v, self.sel_v, self.tmp_v, self.weights = [np.empty(n, np.float32) for _ in range(5)]
        self.n_alloc = n

    cdef uint32_t next_epoch(self):
        # a new mark value per call spares clearing stamp; clear it only when the counter wraps
        self.epoch += 1
        if self.epoch == 0:
            self.stamp[:] = 0
            self.epoch = 1
        return self.epoch

    cdef Py_ssize_t penalties(self, const float[::1] logits, const int64_t[::1] window,
                              Py_ssize_t repeat_from) noexcept nogil:
        cdef const int64_t *wptr = &window[0] if window.shape[0] else NULL
        return collect_penalties(&logits[0], logits.shape[0], wptr, window.shape[0], repeat_from,
                                 self.repeat_penalty, self.presence, self.frequency, &self.stamp[0], self.epoch,
                                 &self.where[0], &self.counts[0], &self.pen_i[0], &self.pen_v[0])

    cdef Py_ssize_t run_chain(self, const float[::1] logits, const int64_t[::1] window, Py_ssize_t repeat_from,
                              Cands *c) noexcept nogil:
        """Penalty, then greedy or top-k, top-p, min-p; leaves the candidates in c."""
        cdef Py_ssize_t n = logits.shape[0]
        cdef Py_ssize_t npen = self.penalties(logits, window, repeat_from)
        if npen < 0:
            return npen
        cdef bint greedy = self.temp <= 0.0
        cdef Py_ssize_t k = 1 if greedy else self.top_k
        cdef Py_ssize_t got
        if 0 < k < n:
            got = select_top(&logits[0], NULL, n, k, &self.stamp[0], self.epoch,
                             &self.pen_i[0], &self.pen_v[0], npen, &self.cand_v[0], &self.cand_i[0])
            c.sorted = True
        else:   # top_k 0 or at least n_vocab: no limit, as llama.cpp's k <= 0
            got = copy_all(&logits[0], n, &self.pen_i[0], &self.pen_v[0], npen, &self.cand_v[0], &self.cand_i[0])
            c.sorted = False
        c.v = &self.cand_v[0]
        c.ids = &self.cand_i[0]
        c.m = got
        if got < 0 or greedy:
            return got
        if not c.sorted and cands_max(c) == -INFINITY:
            return ERR_ALL_MASKED
        got = top_p(c, self.top_p, &self.weights[0], &self.tmp_v[0], &self.tmp_i[0], &self.sel_v[0], &self.sel_i[0])
        if got < 0:
            return got
        return min_p(c, self.min_p)

    cdef Py_ssize_t prepare(self, const float[::1] logits, const int64_t[::1] window, Py_ssize_t repeat_from,
                            Cands *c, double *total):
        """Chain plus temperature weights (in self.weights); raises on bad input."""
        cdef Py_ssize_t got
        self.ensure_scratch(logits.shape[0])
        self.next_epoch()
        with nogil:
            got = self.run_chain(logits, window, repeat_from, c)
            if got > 0:
                if self.temp <= 0.0:
                    self.weights[0] = 1.0
                    total[0] = 1.0
                else:
                    total[0] = temperature_weights(c, self.temp, &self.weights[0])
        check_code(got, logits.shape[0], window.shape[0])
        if got == ERR_ALL_MASKED:
            raise ValueError("every logit is -inf: there is no token to sample")
        if got <= 0:   # every filter keeps the best token, so this is a bug, not bad input
            raise RuntimeError(f"sampler: the chain left no candidate (code {got})")
        return got

    def sample(self, const float[::1] logits not None, const int64_t[::1] window not None, Py_ssize_t repeat_from=0):
        cdef Cands c
        cdef double total
        cdef Py_ssize_t m = self.prepare(logits, window, repeat_from, &c, &total)
        if self.temp <= 0.0:
            return c.ids[0]   # greedy draws no random number, as llama.cpp's greedy sampler
        return c.ids[draw(&self.weights[0], m, total, rng_uniform(&self.rng))]

    def probabilities(self, const float[::1] logits not None, const int64_t[::1] window not None,
                      Py_ssize_t repeat_from=0):
        cdef Cands c
        cdef double total
        cdef Py_ssize_t i, m = self.prepare(logits, window, repeat_from, &c, &total)
        out = np.zeros(logits.shape[0], np.float64)
        cdef double[::1] o = out
        for i in range(m):
            o[c.ids[i]] = self.weights[i] / total
        return out

    def logprobs(self, const float[::1] logits not None, const int64_t[::1] window not None,
                 Py_ssize_t repeat_from, int32_t token, Py_ssize_t top):
        """log-softmax of the penalized logits (before temperature and the filters: the model's own
        distribution as the penalties leave it): (logprob of token, the top ids best first, their
        logprobs). Draws no random number."""
        cdef Py_ssize_t n = logits.shape[0], i, npen, got = 0
        if not 0 <= token < n:
            raise ValueError(f"token {token} outside [0, {n})")
        top = max(0, min(top, n))
        self.ensure_scratch(n)
        cdef uint32_t epoch = self.next_epoch()
        cdef float mx = -INFINITY, v, chosen
        cdef double total = 0.0
        cdef float lse
        ids = np.empty(top, np.int32)
        vals = np.empty(top, np.float32)
        cdef int32_t[::1] oi = ids
        cdef float[::1] ov = vals
        with nogil:
            npen = self.penalties(logits, window, repeat_from)
            if npen >= 0:
                for i in range(n):
                    v = self.pen_v[self.where[i]] if self.stamp[i] == epoch else logits[i]
                    if not (v < INFINITY):
                        npen = ERR_NONFINITE
                        break
                    if v > mx:
                        mx = v
            if npen >= 0 and mx > -INFINITY:
                for i in range(n):
                    v = self.pen_v[self.where[i]] if self.stamp[i] == epoch else logits[i]
                    total += expf(v - mx)
                lse = mx + <float>log(total)
                chosen = (self.pen_v[self.where[token]] if self.stamp[token] == epoch else logits[token]) - lse
                if top:
                    got = select_top(&logits[0], NULL, n, top, &self.stamp[0], epoch, &self.pen_i[0],
                                     &self.pen_v[0], npen, &ov[0], &oi[0])
                    for i in range(got):
                        ov[i] = ov[i] - lse
        check_code(npen, n, window.shape[0])
        if mx == -INFINITY:
            raise ValueError("every logit is -inf: there is no distribution")
        got = max(got, 0)
        return float(chosen), ids[:got], vals[:got]


cdef check_code(Py_ssize_t got, Py_ssize_t n, Py_ssize_t wlen):
    if got == ERR_NONFINITE:
        raise ValueError("logits must not contain NaN or +inf")
    if got == ERR_TOKEN_ID:
        raise ValueError(f"history holds a token id outside [0, {n}) in its last {wlen} tokens")
