/* Products of a quantized weight matrix by float activations, threaded with OpenMP.
 *
 * The activations are quantized once to the weight type's vec_dot_type; the threads then split the
 * weight rows. For a batch, each thread walks tiles of weight rows and, inside a tile, every
 * activation row: the tile stays in cache while the batch streams past it. Types with a
 * matrix-matrix form (gemm) take the whole tile by the batch in one call. */
#include "quants.h"

enum { ROW_TILE = 16 }; /* weight rows per tile: 16 rows of 4096 Q4_0 weights = 36 KiB */
/* From this batch size on, types with a matrix-matrix form use it (benchmarks and tests move it). */
int gk_gemm_min_batch = 1;
/* Up to this batch size matrix-matrix tiles prefetch the weights ahead, as a matrix-vector product
 * does: a decoding batch reads them from DRAM once, a prompt's finds a tile's rows in cache. */
int gk_gemm_stream_max_batch = 32;

size_t gk_matmul_scratch_size(int type, int64_t k, int64_t n) {
    const gk_type_traits *t = gk_type_traits_get(type);
    if (!t || !t->vec_dot) return 0;
    const gk_type_traits *a = gk_type_traits_get(t->vec_dot_type);
    return (size_t)(gk_row_size(a, k) * n);
}

int gk_quantize_rows(int act_type, const float *x, int64_t k, int64_t n, void *out, int n_threads) {
    const gk_type_traits *a = gk_type_traits_get(act_type);
    if (!a || !a->from_float || act_type == GK_TYPE_F32 || k % a->block_size) return -1;
    const int64_t a_row = gk_row_size(a, k);
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > 1)
    for (int64_t j = 0; j < n; j++) a->from_float(x + j * k, (char *)out + j * a_row, k);
    return 0;
}

int gk_quantize_activations(int type, const float *x, int64_t k, int64_t n, void *out, int n_threads) {
    const gk_type_traits *t = gk_type_traits_get(type);
    if (!t || !t->vec_dot || k % t->block_size) return -1;
    return gk_quantize_rows(t->vec_dot_type, x, k, n, out, n_threads);
}

int gk_matmul_act(int type, const void *w, int64_t m, int64_t k, const void *act, int64_t n, float *y,
                  int n_threads) {
    const gk_type_traits *t = gk_type_traits_get(type);
    if (!t || !t->vec_dot || k % t->block_size) return -1;
    const gk_type_traits *a = gk_type_traits_get(t->vec_dot_type);
    if (k % a->block_size) return -1;
    const int64_t w_row = gk_row_size(t, k), a_row = gk_row_size(a, k);
    const char *wb = w, *ab = act;
    const int64_t n_tiles = (m + ROW_TILE - 1) / ROW_TILE;
    int status = 0;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (m * k * n >= 32768)
    for (int64_t tile = 0; tile < n_tiles; tile++) {
        const int64_t i0 = tile * ROW_TILE, i1 = i0 + ROW_TILE < m ? i0 + ROW_TILE : m;
        if (t->gemm && n >= gk_gemm_min_batch) {
            if (t->gemm(k, wb + i0 * w_row, w_row, i1 - i0, ab, a_row, n, &y[i0], m)) {
#pragma omp atomic write
                status = -2;
            }
            continue;
        }
        for (int64_t j = 0; j < n; j++) {
            int64_t i = i0;
            if (t->vec_dot_rows) /* y[j*m + i ...] are consecutive: the rows form writes them in place */
                for (const int r = t->rows_per_dot; i + r <= i1; i += r)
                    t->vec_dot_rows(k, &y[j * m + i], wb + i * w_row, w_row, ab + j * a_row);
            for (; i < i1; i++) t->vec_dot(k, &y[j * m + i], wb + i * w_row, ab + j * a_row);
        }
    }
    return status;
}

int gk_matmul(int type, const void *w, int64_t m, int64_t k, const float *x, int64_t n, float *y, void *scratch,
              int n_threads) {
    const gk_type_traits *t = gk_type_traits_get(type);
    if (!t || !t->vec_dot) return -1;
    const void *act = x;
    if (t->vec_dot_type != GK_TYPE_F32) {
        if (gk_quantize_activations(type, x, k, n, scratch, n_threads)) return -1;
        act = scratch;
    }
    return gk_matmul_act(type, w, m, k, act, n, y, n_threads);
}

int gk_get_rows(int type, const void *table, int64_t n_rows, int64_t k, const int32_t *ids, int64_t n_ids,
                float *out, int n_threads) {
    const gk_type_traits *t = gk_type_traits_get(type);
    if (!t || k % t->block_size) return -1;
    for (int64_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= n_rows) return -2;
    const int64_t row = gk_row_size(t, k);
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_ids * k >= 65536)
    for (int64_t i = 0; i < n_ids; i++) t->to_float((const char *)table + ids[i] * row, out + i * k, k);
    return 0;
}

/* Read n 64-bit words with n_threads threads and return their sum: the machine's read bandwidth,
 * the roofline a matrix-vector product (one pass over the weights) is measured against. */
uint64_t gk_read_sum(const uint64_t *p, int64_t n, int n_threads) {
    uint64_t sum = 0;
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) sum += p[i];
    return sum;
}
