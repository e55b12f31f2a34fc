/* Rows16: a Q4_1 matrix with its rows interleaved 16 at a time, for products on AVX-512 VNNI.
 *
 * In the GGUF layout each row is its own run of blocks, and a product pays a conversion, a scale
 * multiply and an fma for every row and pair of blocks. Repacked, a group of 16 rows is, block by
 * block: the 16 rows' d (fp16), their 16 m, then for each of the block's four quant words the 16
 * rows' word side by side (the same 320 bytes as the 16 rows' blocks). One dpbusd then multiplies
 * 4 quants of each of the 16 rows by one broadcast activation word, and the scaling after it serves
 * 16 rows. benchmarks/rows16.py measured 2.2-3.0x the GGUF layout's product on one thread.
 *
 * Every batch size sums a row the same way, block by block: the block's integer dot, times
 * d * dy, then m times dy * s (s the activation block's sum of levels), each an fma. The generic
 * form below does exactly that in scalar code, so it gives the same bits as the AVX-512 one. */
#include <math.h>

#include "fp16.h"
#include "quants.h"

enum { GROUP_ROWS = 16, Q4_1_GROUP_BLOCK = 16 * (int)sizeof(block_q4_1) };

int gk_rows16_supported(int type) { return type == GK_TYPE_Q4_1 && gk_active_level >= GK_SIMD_AVX512; }

int gk_repack_rows16(int type, const void *src, int64_t m, int64_t k, void *dst) {
    if (type != GK_TYPE_Q4_1 || m <= 0 || m % GROUP_ROWS || k <= 0 || k % QK4_1) return -1;
    const int64_t nb = k / QK4_1;
    const block_q4_1 *rows = src;
    uint8_t *out = dst;
#pragma omp parallel for schedule(static) if (m * k >= (1 << 20))
    for (int64_t g = 0; g < m / GROUP_ROWS; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *o = out + (g * nb + b) * Q4_1_GROUP_BLOCK;
            for (int r = 0; r < GROUP_ROWS; r++) {
                const block_q4_1 *x = &rows[(g * GROUP_ROWS + r) * nb + b];
                memcpy(o + 2 * r, &x->d, 2);
                memcpy(o + 32 + 2 * r, &x->m, 2);
                for (int w = 0; w < 4; w++) memcpy(o + 64 + 64 * w + 4 * r, x->qs + 4 * w, 4);
            }
        }
    return 0;
}

void rows16_q4_1_generic(const void *group, int64_t nb, const void *act, int64_t a_row, int64_t n, float *out,
                         int64_t ldy) {
    for (int64_t j = 0; j < n; j++) {
        const block_q8_0s *a = (const block_q8_0s *)((const char *)act + j * a_row);
        float acc[GROUP_ROWS] = {0};
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *g = (const uint8_t *)group + b * Q4_1_GROUP_BLOCK;
            const float dy = gk_fp16_to_fp32(a[b].d), dys = dy * (float)a[b].s;
            for (int r = 0; r < GROUP_ROWS; r++) {
                gk_fp16 d, m;
                memcpy(&d, g + 2 * r, 2);
                memcpy(&m, g + 32 + 2 * r, 2);
                int32_t dot = 0;
                for (int w = 0; w < 4; w++)
                    for (int i = 0; i < 4; i++) {
                        const uint8_t q = g[64 + 64 * w + 4 * r + i];
                        dot += (q & 0x0F) * a[b].qs[4 * w + i] + (q >> 4) * a[b].qs[16 + 4 * w + i];
                    }
                acc[r] = fmaf((float)dot, gk_fp16_to_fp32(d) * dy, acc[r]);
                acc[r] = fmaf(gk_fp16_to_fp32(m), dys, acc[r]);
            }
        }
        for (int r = 0; r < GROUP_ROWS; r++) out[j * ldy + r] = acc[r];
    }
}

static gk_rows16_fn rows16_fn(int type) {
    if (type != GK_TYPE_Q4_1) return NULL;
#if defined(__x86_64__)
    if (gk_active_level >= GK_SIMD_AVX512) return rows16_q4_1_avx512;
#endif
    return rows16_q4_1_generic;
}

int gk_matmul_rows16(int type, const void *w, int64_t m, int64_t k, const void *act, int64_t n, float *y,
                     int n_threads) {
    const gk_rows16_fn f = rows16_fn(type);
    if (!f || m % GROUP_ROWS || k % QK4_1) return -1;
    const int64_t nb = k / QK4_1, a_row = nb * (int64_t)sizeof(block_q8_0s);
#pragma omp parallel for num_threads(n_threads) schedule(static) if (m * k * n >= 32768)
    for (int64_t g = 0; g < m / GROUP_ROWS; g++)
        f((const uint8_t *)w + g * nb * Q4_1_GROUP_BLOCK, nb, act, a_row, n, y + g * GROUP_ROWS, m);
    return 0;
}
