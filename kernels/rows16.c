/* Rows16: a Q4_0, Q4_1 or Q8_0 matrix with its rows interleaved 16 at a time, for products on AVX-512 VNNI.
 *
 * In the GGUF layout each row is its own run of blocks, and a product pays a conversion, a scale
 * multiply and an fma for every row and pair of blocks. Repacked, a group of 16 rows is, block by
 * block: the 16 rows' d (fp16), for Q4_1 their 16 m, then for each of the block's quant words (4
 * of 8 nibbles for the 4-bit types, 8 of 4 bytes for Q8_0) the 16 rows' word side by side: the
 * same bytes as the 16 rows' blocks. One dpbusd then multiplies 4 quants of each of the 16 rows by
 * one broadcast activation word, and the scaling after it serves 16 rows. benchmarks/rows16.py
 * measured 2.0-3.0x the GGUF layout's product on one thread, for each of the three types.
 *
 * dpbusd multiplies unsigned bytes by signed ones, so Q8_0's quants are stored plus 128 (the sign
 * bit flipped), and the activations are Q8_0S, whose exact sum s of levels takes the offsets back
 * out in integers: Q4_0's 8 * s (its value is d (q - 8)), Q8_0's 128 * s; Q4_1 adds m * d_a * s.
 *
 * Every batch size sums a row the same way, block by block: the block's integer dot, less the
 * offset, times d * d_a, an fma; Q4_1 then m times d_a * s, an fma. The generic form below does
 * exactly that in scalar code, so it gives the same bits as the AVX-512 one. */
#include <math.h>

#include "fp16.h"
#include "quants.h"

enum { GROUP_ROWS = 16 };

/* How many quant words a block has: 4 of 8 nibbles, or Q8_0's 8 of 4 bytes */
static int quant_words(int type) { return type == GK_TYPE_Q8_0 ? 8 : 4; }

int gk_rows16_supported(int type) { return gk_rows16_block_bytes(type) && gk_active_level >= GK_SIMD_AVX512; }

/* One thread, on purpose: the repack runs where the model loads (a server's main thread), and an
 * OpenMP team left there beside the decoding thread's makes libgomp count more threads than cores
 * and cut its spinning to 100 rounds (GCC's GOMP_SPINCOUNT), so a later step's parallel regions wait
 * on futex wake-ups: measured, one server client at 90 tokens/s against 229 with this loop serial. */
int gk_repack_rows16(int type, const void *src, int64_t m, int64_t k, void *dst) {
    const int bytes = gk_rows16_block_bytes(type);
    if (!bytes || m <= 0 || m % GROUP_ROWS || k <= 0 || k % 32) return -1;
    const int64_t nb = k / 32, block_bytes = bytes / GROUP_ROWS, row_bytes = nb * block_bytes;
    const int qo = gk_rows16_quant_offset(type), words = quant_words(type);
    const uint32_t flip = type == GK_TYPE_Q8_0 ? 0x80808080u : 0;
    uint8_t *out = dst;
    for (int64_t g = 0; g < m / GROUP_ROWS; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *o = out + (g * nb + b) * bytes;
            for (int r = 0; r < GROUP_ROWS; r++) {
                /* every block starts with d (fp16); Q4_1's m follows it, then the quants */
                const uint8_t *x = (const uint8_t *)src + (g * GROUP_ROWS + r) * row_bytes + b * block_bytes;
                memcpy(o + 2 * r, x, 2);
                if (type == GK_TYPE_Q4_1) memcpy(o + 32 + 2 * r, x + 2, 2);
                const uint8_t *qs = x + (type == GK_TYPE_Q4_1 ? 4 : 2);
                for (int w = 0; w < words; w++) {
                    uint32_t word;
                    memcpy(&word, qs + 4 * w, 4);
                    word ^= flip;
                    memcpy(o + qo + 64 * w + 4 * r, &word, 4);
                }
            }
        }
    return 0;
}

size_t gk_rows16_scratch_size(int64_t k, int64_t n) {
    return (size_t)(n * (k / QK8_0) * (int64_t)sizeof(block_q8_0s));
}

int gk_rows16_quantize(const float *x, int64_t k, int64_t n, void *out, int n_threads) {
    return k <= 0 ? -1 : gk_quantize_rows(GK_TYPE_Q8_0S, x, k, n, out, n_threads);
}

/* The scalar form of one type's group product (the AVX-512 one's bits) */
static inline void rows16_generic(const int type, const void *group, int64_t nb, const void *act, int64_t a_row,
                                  int64_t n, float *out, int64_t ldy) {
    const int bytes = gk_rows16_block_bytes(type), qo = gk_rows16_quant_offset(type);
    for (int64_t j = 0; j < n; j++) {
        const block_q8_0s *a = (const block_q8_0s *)((const char *)act + j * a_row);
        float acc[GROUP_ROWS] = {0};
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *g = (const uint8_t *)group + b * bytes;
            const float dy = gk_fp16_to_fp32(a[b].d), dys = dy * (float)a[b].s;
            const int32_t offset = type == GK_TYPE_Q4_0 ? 8 * a[b].s : type == GK_TYPE_Q8_0 ? 128 * a[b].s : 0;
            for (int r = 0; r < GROUP_ROWS; r++) {
                gk_fp16 d;
                memcpy(&d, g + 2 * r, 2);
                int32_t dot = 0;
                if (type == GK_TYPE_Q8_0) {
                    for (int i = 0; i < QK8_0; i++) dot += g[qo + 64 * (i / 4) + 4 * r + i % 4] * a[b].qs[i];
                } else {
                    for (int w = 0; w < 4; w++)
                        for (int i = 0; i < 4; i++) {
                            const uint8_t q = g[qo + 64 * w + 4 * r + i];
                            dot += (q & 0x0F) * a[b].qs[4 * w + i] + (q >> 4) * a[b].qs[16 + 4 * w + i];
                        }
                }
                acc[r] = fmaf((float)(dot - offset), gk_fp16_to_fp32(d) * dy, acc[r]);
                if (type == GK_TYPE_Q4_1) {
                    gk_fp16 m;
                    memcpy(&m, g + 32 + 2 * r, 2);
                    acc[r] = fmaf(gk_fp16_to_fp32(m), dys, acc[r]);
                }
            }
        }
        for (int r = 0; r < GROUP_ROWS; r++) out[j * ldy + r] = acc[r];
    }
}

GK_ROWS16_ENTRY(q4_0, generic, rows16_generic, GK_TYPE_Q4_0)
GK_ROWS16_ENTRY(q4_1, generic, rows16_generic, GK_TYPE_Q4_1)
GK_ROWS16_ENTRY(q8_0, generic, rows16_generic, GK_TYPE_Q8_0)

/* One row a rows16 type: its generic product and, where built, its AVX-512 VNNI one */
#if defined(__x86_64__)
#define AVX512_FN(f) f
#else
#define AVX512_FN(f) NULL
#endif
static const struct {
    int type;
    gk_rows16_fn generic, avx512;
} rows16_fns[] = {
    {GK_TYPE_Q4_0, rows16_q4_0_generic, AVX512_FN(rows16_q4_0_avx512)},
    {GK_TYPE_Q4_1, rows16_q4_1_generic, AVX512_FN(rows16_q4_1_avx512)},
    {GK_TYPE_Q8_0, rows16_q8_0_generic, AVX512_FN(rows16_q8_0_avx512)},
};

static gk_rows16_fn rows16_fn(int type) {
    for (size_t i = 0; i < sizeof rows16_fns / sizeof rows16_fns[0]; i++)
        if (rows16_fns[i].type == type)
            return rows16_fns[i].avx512 && gk_active_level >= GK_SIMD_AVX512 ? rows16_fns[i].avx512
                                                                               : rows16_fns[i].generic;
    return NULL;
}

int gk_matmul_rows16(int type, const void *w, int64_t m, int64_t k, const void *act, int64_t n, float *y,
                     int n_threads) {
    const gk_rows16_fn f = rows16_fn(type);
    if (!f || m % GROUP_ROWS || k <= 0 || k % 32) return -1;
    const int64_t nb = k / 32, a_row = nb * (int64_t)sizeof(block_q8_0s), bytes = gk_rows16_block_bytes(type);
#pragma omp parallel for num_threads(n_threads) schedule(static) if (m * k * n >= 32768)
    for (int64_t g = 0; g < m / GROUP_ROWS; g++)
        f((const uint8_t *)w + g * nb * bytes, nb, act, a_row, n, y + g * GROUP_ROWS, m);
    return 0;
}
