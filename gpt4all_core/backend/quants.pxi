# Quantized types: dequantize, quantize, products with float activations, embedding lookup.
# (Included into cpu_kernels.pyx.) Every shape is checked here before C sees a pointer.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
import numpy as np

cdef extern from "quants.h" nogil:
    ctypedef void (*gk_to_float_fn)(const void *x, float *y, int64_t n) noexcept nogil
    ctypedef void (*gk_from_float_fn)(const float *x, void *y, int64_t n) noexcept nogil
    ctypedef void (*gk_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y) noexcept nogil
    ctypedef struct gk_type_traits:
        const char *name
        int64_t block_size
        int64_t type_size
        gk_to_float_fn to_float
        gk_from_float_fn from_float
        int vec_dot_type
        gk_vec_dot_fn vec_dot
        void *vec_dot_rows
        int rows_per_dot
        void *gemm
    int GK_TYPE_COUNT
    const gk_type_traits *gk_type_traits_get(int type)
    size_t gk_matmul_scratch_size(int type, int64_t k, int64_t n)
    int gk_matmul(int type, const void *w, int64_t m, int64_t k, const float *x, int64_t n, float *y,
                  void *scratch, int n_threads)
    int gk_get_rows(int type, const void *table, int64_t n_rows, int64_t k, const int32_t *ids, int64_t n_ids,
                    float *out, int n_threads)
    uint64_t gk_read_sum(const uint64_t *p, int64_t n, int n_threads)
    int gk_gemm_min_batch
    int gk_gemm_stream_max_batch
    int gk_quantize_activations(int type, const float *x, int64_t k, int64_t n, void *out, int n_threads)
    int gk_rows16_supported(int type)
    int gk_rows16_block_bytes(int type)
    int gk_repack_rows16(int type, const void *src, int64_t m, int64_t k, void *dst)
    size_t gk_rows16_scratch_size(int64_t k, int64_t n)
    int gk_rows16_quantize(const float *x, int64_t k, int64_t n, void *out, int n_threads)
    int gk_matmul_rows16(int type, const void *w, int64_t m, int64_t k, const void *act, int64_t n, float *y,
                         int n_threads)


def physical_cores():
    """Cores this process may run on, counting each core once (hyper-threads share one)."""
    import os
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                cores.add(f.read().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


DEFAULT_THREADS = physical_cores()


cdef const gk_type_traits *_traits(ggml_type) except NULL:
    cdef int t
    try:
        t = int(ggml_type)
    except (TypeError, ValueError):
        raise ValueError(f"ggml_type must be a GGMLType or int, got {ggml_type!r}") from None
    cdef const gk_type_traits *traits = gk_type_traits_get(t) if 0 <= t < GK_TYPE_COUNT else NULL
    if traits == NULL:
        raise ValueError(f"ggml type {ggml_type!r} is not supported by the CPU kernels; "
                         f"supported: {', '.join(supported_types())}")
    return traits


def supported_types():
    """Names of the types the kernels read (dequantize), in id order."""
    return [gk_type_traits_get(t).name.decode() for t in range(GK_TYPE_COUNT) if gk_type_traits_get(t) != NULL]


def matrix_kernel_min_batch(n=None):
    """The batch size from which matrix products take a type's matrix-matrix kernel (default 1:
    always, so results do not depend on batching); with n, set it (benchmarks and tests compare
    the two paths). Returns the value in force before."""
    global gk_gemm_min_batch
    before = gk_gemm_min_batch
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"matrix_kernel_min_batch: n must be at least 1, got {n}")
        gk_gemm_min_batch = int(n)
    return before


def matrix_kernel_stream_max_batch(n=None):
    """Up to which batch size the matrix-matrix kernels prefetch weights ahead (streaming them from
    DRAM, as decoding batches do; default 32); with n (0: never), set it. Returns the value before."""
    global gk_gemm_stream_max_batch
    before = gk_gemm_stream_max_batch
    if n is not None:
        if int(n) < 0:
            raise ValueError(f"matrix_kernel_stream_max_batch: n must be at least 0, got {n}")
        gk_gemm_stream_max_batch = int(n)
    return before


def type_info(ggml_type):
    """What the kernels know of a type: name, block size, bytes per block, the activation type its
    products quantize to (name and id; Q8_0S is ours, not a GGML type), and whether it can be
    quantized to and used as a weight; at the active SIMD level, whether batches take a matrix-matrix
    kernel (from GEMM_MIN_BATCH activation rows on) rather than a dot product per row."""
    cdef const gk_type_traits *t = _traits(ggml_type)
    return {"name": t.name.decode(), "block_size": t.block_size, "type_size": t.type_size,
            "activation_type": gk_type_traits_get(t.vec_dot_type).name.decode(),
            "activation_type_id": t.vec_dot_type, "can_quantize": t.from_float != NULL,
            "is_weight_type": t.vec_dot != NULL, "has_matrix_kernel": t.gemm != NULL}


def _raw_rows(data, str name):
    """2-D data as contiguous uint8 rows of its bytes: typed arrays (a float16 weight from
    Tensor.data, say) are reinterpreted, never converted value by value."""
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected 2-D rows of a tensor (raw uint8 blocks or typed values), got shape {arr.shape}")
    arr = np.ascontiguousarray(arr)
    return arr if arr.dtype == np.uint8 else arr.view(np.uint8)


cdef int64_t _row_elements(const gk_type_traits *t, int64_t row_bytes, str what) except -1:
    if row_bytes % t.type_size:
        raise ValueError(f"{what}: rows of {row_bytes} bytes are not whole {t.name.decode()} blocks "
                         f"of {t.type_size} bytes")
    return row_bytes // t.type_size * t.block_size


cdef int _threads(n_threads) except -1:
    if n_threads is None:
        return DEFAULT_THREADS
    if int(n_threads) < 1:
        raise ValueError(f"n_threads must be at least 1, got {n_threads}")
    return int(n_threads)


def dequantize(data, ggml_type):
    """Rows of raw blocks (uint8 array [..., row bytes]) to float32 [..., row elements]."""
    cdef const gk_type_traits *t = _traits(ggml_type)
    raw = np.ascontiguousarray(np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview))
                               else np.asarray(data))
    if raw.ndim == 0:
        raise ValueError("data: expected at least one dimension of raw bytes")
    if raw.dtype != np.uint8:
        raw = raw.view(np.uint8)  # typed values (F16, F32 tensors) are their bytes
    cdef int64_t row_bytes = raw.shape[raw.ndim - 1]
    cdef int64_t k = _row_elements(t, row_bytes, "data")
    cdef const uint8_t[:, ::1] rows = raw.reshape(-1, row_bytes) if raw.size else np.zeros((0, row_bytes), np.uint8)
    out = np.empty((rows.shape[0], k), np.float32)
    cdef float[:, ::1] y = out
    cdef int64_t i, n_rows = rows.shape[0]
    if n_rows and k:
        with nogil:
            for i in range(n_rows):
                t.to_float(&rows[i, 0], &y[i, 0], k)
    return out.reshape(tuple(raw.shape)[:raw.ndim - 1] + (k,))


def quantize(x, ggml_type):
    """float32 rows [..., k] to raw blocks uint8 [..., row bytes], with llama.cpp's reference rounding."""
    cdef const gk_type_traits *t = _traits(ggml_type)
    if t.from_float == NULL:
        raise ValueError(f"quantizing to {t.name.decode()} is not supported (it can be read, not written)")
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if arr.ndim == 0:
        raise ValueError("x: expected at least one dimension")
    cdef int64_t k = arr.shape[arr.ndim - 1]
    if k % t.block_size:
        raise ValueError(f"x: rows of {k} elements are not whole {t.name.decode()} blocks of {t.block_size}")
    cdef int64_t row_bytes = k // t.block_size * t.type_size
    cdef const float[:, ::1] rows = arr.reshape(-1, k) if arr.size else np.zeros((0, k), np.float32)
    out = np.empty((rows.shape[0], row_bytes), np.uint8)
    cdef uint8_t[:, ::1] y = out
    cdef int64_t i, n_rows = rows.shape[0]
    if n_rows and k:
        with nogil:
            for i in range(n_rows):
                t.from_float(&rows[i, 0], &y[i, 0], k)
    return out.reshape(tuple(arr.shape)[:arr.ndim - 1] + (row_bytes,))


def _activation_rows(x, int64_t k):
    """x as float32 rows [n, k] for a product, and whether it came as one vector [k]."""
    xa = np.ascontiguousarray(x, dtype=np.float32)
    vector = xa.ndim == 1
    if vector:
        xa = xa[None, :]
    if xa.ndim != 2 or xa.shape[1] != k:
        raise ValueError(f"x: expected [n, {k}] (or [{k}]) to match the weight rows, got {np.shape(x)}")
    return xa, vector


def matmul(w, ggml_type, x, n_threads=None):
    """y[j, i] = dot(weight row i, x[j]): w is [m, ...] rows of ggml_type (raw uint8 blocks, or typed
    values such as a float16 Tensor.data, whose bytes are used as they are), x is
    float32 [n, k] (or [k]); returns float32 [n, m] (or [m]). Activations are quantized to the
    weight type's activation type first, as llama.cpp does."""
    cdef const gk_type_traits *t = _traits(ggml_type)
    if t.vec_dot == NULL:
        raise ValueError(f"{t.name.decode()} is an activation type, not a weight type")
    cdef const uint8_t[:, ::1] wv = _raw_rows(w, "w")
    cdef int64_t m = wv.shape[0], k = _row_elements(t, wv.shape[1], "w")
    xa, vector = _activation_rows(x, k)
    cdef const gk_type_traits *a = gk_type_traits_get(t.vec_dot_type)
    if k % a.block_size:
        raise ValueError(f"k = {k} is not a multiple of {a.block_size}, the block of the activation type "
                         f"{a.name.decode()}")
    cdef const float[:, ::1] xv = xa
    cdef int64_t n = xv.shape[0]
    out = np.zeros((n, m), np.float32)
    cdef float[:, ::1] y = out
    cdef int threads = _threads(n_threads)
    scratch = np.empty(max(1, gk_matmul_scratch_size(int(ggml_type), k, n)), np.uint8)
    cdef uint8_t[::1] sv = scratch
    cdef int rc = 0, type_id = int(ggml_type)
    if n and m and k:
        with nogil:
            rc = gk_matmul(type_id, &wv[0, 0], m, k, &xv[0, 0], n, &y[0, 0], &sv[0], threads)
    if rc == -2:
        raise MemoryError(f"matmul of {t.name.decode()}: out of memory")
    if rc:
        raise ValueError(f"matmul of {t.name.decode()} with k = {k} failed (code {rc})")
    return out[0] if vector else out


def rows16_supported(ggml_type):
    """Whether the products of ggml_type's matrices take rows repacked 16 at a time at the active SIMD
    level (kernels/rows16.c: Q4_0, Q4_1 and Q8_0 on AVX-512 VNNI), as the decoder then does."""
    return bool(gk_rows16_supported(int(ggml_type)))


cdef int64_t _rows16_rows(const gk_type_traits *t, ggml_type, int64_t m) except -1:
    cdef int other
    if not gk_rows16_block_bytes(int(ggml_type)):  # kernels/quants.h: the types with a group layout
        names = [gk_type_traits_get(other).name.decode() for other in range(GK_TYPE_COUNT)
                 if gk_rows16_block_bytes(other) and gk_type_traits_get(other) != NULL]
        raise ValueError(f"rows16: {t.name.decode()} rows are not repacked ({', '.join(names)} only)")
    if m == 0 or m % 16:
        raise ValueError(f"rows16: w has {m} rows, not a positive multiple of 16")
    return m


def repack_rows16(w, ggml_type):
    """Raw rows [m, row bytes] of ggml_type (Q4_0, Q4_1 or Q8_0; m a multiple of 16) repacked for
    matmul_rows16: the same bytes (Q8_0's quants with their sign bit flipped), 16 rows interleaved
    block by block."""
    cdef const gk_type_traits *t = _traits(ggml_type)
    cdef const uint8_t[:, ::1] wv = _raw_rows(w, "w")
    cdef int64_t m = _rows16_rows(t, ggml_type, wv.shape[0]), k = _row_elements(t, wv.shape[1], "w")
    out = np.empty_like(np.asarray(wv))
    cdef uint8_t[:, ::1] ov = out
    cdef int rc, type_id = int(ggml_type)
    with nogil:
        rc = gk_repack_rows16(type_id, &wv[0, 0], m, k, &ov[0, 0])
    if rc:
        raise ValueError(f"rows16: cannot repack {m} rows of {k} {t.name.decode()} elements")
    return out


def matmul_rows16(w, ggml_type, x, n_threads=None):
    """matmul() for rows repacked by repack_rows16: y[j, i] = dot(row i, x[j]), x float32 [n, k] (or
    [k]), quantized to Q8_0S whatever the weight type. Every batch size gives a row the same bits."""
    cdef const gk_type_traits *t = _traits(ggml_type)
    cdef const uint8_t[:, ::1] wv = _raw_rows(w, "w")
    cdef int64_t m = _rows16_rows(t, ggml_type, wv.shape[0]), k = _row_elements(t, wv.shape[1], "w")
    xa, vector = _activation_rows(x, k)
    cdef const float[:, ::1] xv = xa
    cdef int64_t n = xv.shape[0]
    out = np.zeros((n, m), np.float32)
    cdef float[:, ::1] y = out
    scratch = np.empty(max(1, gk_rows16_scratch_size(k, n)), np.uint8)
    cdef uint8_t[::1] sv = scratch
    cdef int rc = 0, threads = _threads(n_threads), type_id = int(ggml_type)
    if n:
        with nogil:
            rc = gk_rows16_quantize(&xv[0, 0], k, n, &sv[0], threads)
            if rc == 0:
                rc = gk_matmul_rows16(type_id, &wv[0, 0], m, k, &sv[0], n, &y[0, 0], threads)
    if rc:
        raise ValueError(f"rows16 matmul with k = {k} failed (code {rc})")
    return out[0] if vector else out


def get_rows(table, ggml_type, ids, n_threads=None):
    """Embedding lookup: float32 [len(ids), k] from a table of raw rows uint8 [rows, row bytes]."""
    cdef const gk_type_traits *t = _traits(ggml_type)
    cdef const uint8_t[:, ::1] tv = _raw_rows(table, "table")
    cdef int64_t k = _row_elements(t, tv.shape[1], "table")
    ida = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
    if ida.size and (ida.min() < 0 or ida.max() >= tv.shape[0]):
        raise ValueError(f"ids: values must lie in [0, {tv.shape[0]}), got {ida.min()}..{ida.max()}")
    cdef const int32_t[::1] iv = ida
    out = np.empty((ida.size, k), np.float32)
    cdef float[:, ::1] y = out
    cdef int threads = _threads(n_threads), rc = 0, type_id = int(ggml_type)
    if ida.size and k:
        with nogil:
            rc = gk_get_rows(type_id, &tv[0, 0], tv.shape[0], k, &iv[0], iv.shape[0], &y[0, 0], threads)
    if rc:
        raise ValueError(f"get_rows failed (code {rc})")
    return out


def read_sum(words, n_threads=None):
    """Sum of a uint64 array read by n_threads threads: times the machine's read bandwidth."""
    cdef const uint64_t[::1] w = np.ascontiguousarray(words, dtype=np.uint64)
    cdef int threads = _threads(n_threads)
    cdef uint64_t total = 0
    if w.shape[0]:
        with nogil:
            total = gk_read_sum(&w[0], w.shape[0], threads)
    return total
