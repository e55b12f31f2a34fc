/* Quantized block layouts (byte-compatible with GGUF files), their per-row functions, and the
 * type-traits table that maps each type to them.
 *
 * A weight row is dotted with activations quantized on the fly, so the inner loop is integer:
 *   Q4_0, Q5_0, Q8_0, IQ4_NL -> Q8_0 activations
 *   Q4_1, Q5_1 -> Q8_0S: Q8_0 plus each block's sum of levels as an exact int16, computed once per
 *     activation row (llama.cpp's Q8_1 keeps d*sum rounded to fp16 instead)
 *   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> Q8_K (256-blocks with 16-element sums)
 *   F32, F16, BF16 -> F32 activations (weights widened to float in the loop: exact products) */
#ifndef GK_QUANTS_H
#define GK_QUANTS_H

#include "fp16.h"
#include "gk.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK4_NL 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { gk_fp16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { gk_fp16 d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { gk_fp16 d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { gk_fp16 d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { gk_fp16 d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { gk_fp16 d, s; int8_t qs[QK8_1]; } block_q8_1; /* s = d * sum(qs) */
typedef struct { gk_fp16 d; int16_t s; int8_t qs[QK8_0]; } block_q8_0s; /* s = sum(qs), exact; ours only */
typedef struct { gk_fp16 d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; gk_fp16 d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; gk_fp16 d; } block_q3_K;
typedef struct { gk_fp16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { gk_fp16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; gk_fp16 d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1");
_Static_assert(sizeof(block_q8_0s) == 36, "q8_0s");
_Static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K");

/* IQ4_NL's 16 non-linear levels. */
extern const int8_t gk_kvalues_iq4nl[16];

/* The type ids are GGML's. */
typedef enum {
    GK_TYPE_F32 = 0, GK_TYPE_F16 = 1, GK_TYPE_Q4_0 = 2, GK_TYPE_Q4_1 = 3, GK_TYPE_Q5_0 = 6,
    GK_TYPE_Q5_1 = 7, GK_TYPE_Q8_0 = 8, GK_TYPE_Q8_1 = 9, GK_TYPE_Q2_K = 10, GK_TYPE_Q3_K = 11,
    GK_TYPE_Q4_K = 12, GK_TYPE_Q5_K = 13, GK_TYPE_Q6_K = 14, GK_TYPE_Q8_K = 15, GK_TYPE_IQ4_NL = 20,
    GK_TYPE_BF16 = 30,
    GK_TYPE_Q8_0S = 31, /* not a GGML type: an activation format of ours (31 is unused in GGML) */
    GK_TYPE_COUNT = 32
} gk_type;

typedef void (*gk_to_float_fn)(const void *restrict x, float *restrict y, int64_t n);
typedef void (*gk_from_float_fn)(const float *restrict x, void *restrict y, int64_t n);
/* s = dot of n elements: x a weight row, y activations already in the weight's vec_dot_type */
typedef void (*gk_vec_dot_fn)(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);

/* s[0..rows) = dots of `rows` consecutive weight rows (row_bytes apart) with the same activations */
typedef void (*gk_vec_dot_rows_fn)(int64_t n, float *restrict s, const void *restrict x, int64_t row_bytes,
                                   const void *restrict y);

/* out[j * ldy + r] = dot(weight row r, activation row j) for r < m, j < n: weight rows row_bytes
 * apart, activation rows (in the weight's vec_dot_type) y_row apart. The matrix-matrix form.
 * Returns 0, or -2 when out of memory. */
typedef int (*gk_gemm_fn)(int64_t k, const void *restrict x, int64_t row_bytes, int64_t m, const void *restrict y,
                           int64_t y_row, int64_t n, float *restrict out, int64_t ldy);

typedef struct {
    const char *name;
    int64_t block_size;
    int64_t type_size;
    gk_to_float_fn to_float;     /* dequantize a row */
    gk_from_float_fn from_float; /* quantize a row, llama.cpp's reference rounding; NULL: not written */
    gk_type vec_dot_type;        /* what the activations are quantized to for vec_dot */
    gk_vec_dot_fn vec_dot;       /* NULL for activation-only types (Q8_1, Q8_0S, Q8_K) */
    gk_vec_dot_rows_fn vec_dot_rows; /* optional several-rows form (NULL: matmul calls vec_dot per row) */
    int rows_per_dot;                /* how many rows vec_dot_rows computes */
    gk_gemm_fn gemm;                 /* optional matrix-matrix form for batches (NULL: dots per row) */
} gk_type_traits;

/* The traits of type t at the active SIMD level (vec_dot and activation quantizers are the
 * SIMD ones where they exist); NULL for a type we do not support. */
const gk_type_traits *gk_type_traits_get(int type);
/* The same at a given SIMD level (tests compare levels). */
const gk_type_traits *gk_type_traits_at(int type, gk_simd_level level);

/* Q4_K/Q5_K: the 6-bit scale and min of sub-block j (of 8) from the 12 packed bytes. */
static inline void gk_scale_min_k4(int j, const uint8_t *restrict q, uint8_t *restrict d, uint8_t *restrict m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K/Q5_K: the 8 scales and 8 mins (6 bits each) of a super-block, unpacked word-wise from the
 * 12 packed bytes: bytes 0..7 of the result are the scales, 8..15 the mins. */
static inline void gk_unpack_scales_mins_k4(const uint8_t *packed, uint32_t out[4]) {
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    memcpy(out, packed, 12);
    out[3] = ((out[2] >> 4) & kmask2) | (((out[1] >> 6) & kmask3) << 4);
    const uint32_t mins_lo = out[1] & kmask1;
    out[1] = (out[2] & kmask2) | (((out[0] >> 6) & kmask3) << 4);
    out[2] = mins_lo;
    out[0] &= kmask1;
}

/* Q3_K: the 16 6-bit scales (still biased by 32) from the 12 packed bytes. */
static inline void gk_scales_q3_K(const uint8_t *restrict packed, int8_t scales[16]) {
    uint32_t aux[4];
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    memcpy(aux, packed, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    memcpy(scales, aux, 16);
}

/* Shared by the quantizers. */
#define GK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GK_MAX(a, b) ((a) > (b) ? (a) : (b))

/* round to nearest, ties to even, for |x| < 2^22 (llama.cpp's nearest_int: the same ties) */
static inline int gk_nearest_int(float x) {
    const float val = x + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

/* the value of largest magnitude among x[0..n), with its sign (the first one on ties); *amax its magnitude */
static inline float gk_signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < __builtin_fabsf(x[j])) {
            amax = __builtin_fabsf(x[j]);
            max = x[j];
        }
    if (amax_out) *amax_out = amax;
    return max;
}

static inline int64_t gk_row_size(const gk_type_traits *t, int64_t n) { return n / t->block_size * t->type_size; }

/* Dequantize */
void dequantize_row_f32(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_f16(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_bf16(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q4_0(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q4_1(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q5_0(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q5_1(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q8_0(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q8_1(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q8_0s(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_iq4_nl(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q2_K(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q3_K(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q4_K(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q5_K(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q6_K(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q8_K(const void *restrict x, float *restrict y, int64_t n);

/* Quantize (reference rounding, as llama.cpp's *_ref functions) */
void quantize_row_f32(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_f16(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_bf16(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q4_0(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q4_1(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q5_0(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q5_1(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_0(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_1(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_0s(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_K(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_iq4_nl(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q2_K(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q3_K(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q4_K(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q5_K(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q6_K(const float *restrict x, void *restrict y, int64_t n);

/* Dot products, generic */
void vec_dot_f32_f32(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_f16_f32(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_bf16_f32(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_0_q8_0(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_1_q8_0s(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_0_q8_0(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_1_q8_0s(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q8_0_q8_0(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_iq4_nl_q8_0(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q2_K_q8_K(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q3_K_q8_K(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_K_q8_K(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_K_q8_K(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q6_K_q8_K(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);

/* Dot products, SIMD variants (kernels/vec_dot_avx2.c, vec_dot_avx512.c) */
void vec_dot_f32_f32_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_f16_f32_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_bf16_f32_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_0_q8_0_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_1_q8_0s_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q8_0_q8_0_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_0_q8_0_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_1_q8_0s_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_iq4_nl_q8_0_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q2_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q3_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q6_K_q8_K_avx2(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_f32_f32_avx512(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
#define GK_ROWS_AVX512_DECL(name)                                                                              \
    void vec_dot_##name##_avx512(int64_t n, float *restrict s, const void *restrict x, const void *restrict y); \
    void vec_dot_rows_##name##_avx512(int64_t n, float *restrict s, const void *restrict x, int64_t row_bytes,  \
                                      const void *restrict y);
GK_ROWS_AVX512_DECL(q4_0_q8_0)
GK_ROWS_AVX512_DECL(q4_1_q8_0s)
GK_ROWS_AVX512_DECL(q5_0_q8_0)
GK_ROWS_AVX512_DECL(q5_1_q8_0s)
GK_ROWS_AVX512_DECL(iq4_nl_q8_0)
void quantize_row_q8_0_avx512(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_0s_avx512(const float *restrict x, void *restrict y, int64_t n);
int gk_rows_avx512(void);
#define GK_GEMM_AVX512_DECL(name)                                                                             \
    int gemm_##name##_avx512(int64_t k, const void *restrict x, int64_t row_bytes, int64_t m,                \
                             const void *restrict y, int64_t y_row, int64_t n, float *restrict out, int64_t ldy);
GK_GEMM_AVX512_DECL(q4_0_q8_0)
GK_GEMM_AVX512_DECL(q4_1_q8_0s)
GK_GEMM_AVX512_DECL(q5_0_q8_0)
GK_GEMM_AVX512_DECL(q5_1_q8_0s)
GK_GEMM_AVX512_DECL(iq4_nl_q8_0)
GK_GEMM_AVX512_DECL(q8_0_q8_0)
GK_GEMM_AVX512_DECL(q4_K_q8_K)
GK_GEMM_AVX512_DECL(q6_K_q8_K)
GK_GEMM_AVX512_DECL(f32_f32)
GK_GEMM_AVX512_DECL(f16_f32)
GK_GEMM_AVX512_DECL(bf16_f32)
void vec_dot_f16_f32_avx512(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);

/* y[j, i] = dot(w row i, x row j): w is m rows of k weights of type `type`, x is n rows of k floats,
 * y is n rows of m floats. Activations are quantized once into `scratch` (gk_matmul_scratch_size
 * bytes). Threads split the weight rows. Returns 0, -1 for an unsupported type or k not whole blocks,
 * -2 when out of memory. */
size_t gk_matmul_scratch_size(int type, int64_t k, int64_t n);
int gk_matmul(int type, const void *w, int64_t m, int64_t k, const float *x, int64_t n, float *y, void *scratch,
              int n_threads);
/* The two halves of gk_matmul, so that one quantized activation serves several weights of the
 * same vec_dot_type (Q, K and V; gate and up): quantize x (n rows of k) into out, which holds
 * gk_matmul_scratch_size bytes (-1 when the type's activations are F32: pass x itself then), and
 * the product with activations already in the weight's vec_dot_type. */
/* Batches of at least this many activation rows take a type's matrix-matrix form (default 1: all,
 * so that a row's result never depends on the batch it came in); smaller ones take dot products. */
extern int gk_gemm_min_batch;
extern int gk_gemm_stream_max_batch;
int gk_quantize_activations(int type, const float *x, int64_t k, int64_t n, void *out, int n_threads);
/* n rows of k floats quantized to act_type (an activation type: Q8_0, Q8_0S, Q8_1, Q8_K), 0 or -1. */
int gk_quantize_rows(int act_type, const float *x, int64_t k, int64_t n, void *out, int n_threads);
int gk_matmul_act(int type, const void *w, int64_t m, int64_t k, const void *act, int64_t n, float *y,
                  int n_threads);
/* out[i] = dequantized row ids[i] of a table of rows of k elements of `type` (embedding lookup). */
int gk_get_rows(int type, const void *table, int64_t n_rows, int64_t k, const int32_t *ids, int64_t n_ids,
                float *out, int n_threads);

/* Rows16: a weight matrix repacked with its rows interleaved 16 at a time (rows16.c), so that one
 * multiply-add instruction takes 4 quants of each of 16 rows and the scaling after it serves 16 rows.
 * Whether type has it at the active SIMD level (Q4_0, Q4_1, Q8_0 on AVX-512 VNNI): */
int gk_rows16_supported(int type);
/* A group's block (16 rows' blocks of one type): its bytes (0: not a rows16 type) and where its quant
 * words start, after the 16 d and, for Q4_1, the 16 m */
static inline int gk_rows16_block_bytes(int type) {
    return type == GK_TYPE_Q4_0 ? 16 * (int)sizeof(block_q4_0)
           : type == GK_TYPE_Q4_1 ? 16 * (int)sizeof(block_q4_1)
           : type == GK_TYPE_Q8_0 ? 16 * (int)sizeof(block_q8_0)
                                  : 0;
}
static inline int gk_rows16_quant_offset(int type) { return type == GK_TYPE_Q4_1 ? 64 : 32; }
/* dst (as many bytes as src) = m rows of k elements of type, m a multiple of 16. Returns 0 or -1. */
int gk_repack_rows16(int type, const void *src, int64_t m, int64_t k, void *dst);
/* The activations every rows16 product takes: n rows of k floats as Q8_0S (whatever the weight type),
 * in gk_rows16_scratch_size(k, n) bytes. gk_rows16_quantize returns 0 or -1. */
size_t gk_rows16_scratch_size(int64_t k, int64_t n);
int gk_rows16_quantize(const float *x, int64_t k, int64_t n, void *out, int n_threads);
/* gk_matmul_act for a repacked matrix and gk_rows16_quantize's activations: every batch size sums a
 * row in the same order. 0 or -1. */
int gk_matmul_rows16(int type, const void *w, int64_t m, int64_t k, const void *act, int64_t n, float *y,
                     int n_threads);
/* One group of 16 rows (nb blocks) by n Q8_0S activation rows (a_row bytes apart): out[j * ldy + r]. */
typedef void (*gk_rows16_fn)(const void *group, int64_t nb, const void *act, int64_t a_row, int64_t n, float *out,
                             int64_t ldy);
#define GK_ROWS16_DECLARE(name) \
    void rows16_##name##_generic(const void *group, int64_t nb, const void *act, int64_t a_row, int64_t n, \
                                 float *out, int64_t ldy); \
    void rows16_##name##_avx512(const void *group, int64_t nb, const void *act, int64_t a_row, int64_t n, \
                                float *out, int64_t ldy);
GK_ROWS16_DECLARE(q4_0)
GK_ROWS16_DECLARE(q4_1)
GK_ROWS16_DECLARE(q8_0)
/* rows16_<name>_<level>: the level's form, one inlined body (a type parameter) per weight type */
#define GK_ROWS16_ENTRY(name, level, body, type) \
    void rows16_##name##_##level(const void *group, int64_t nb, const void *act, int64_t a_row, int64_t n, \
                                 float *out, int64_t ldy) { \
        body(type, group, nb, act, a_row, n, out, ldy); \
    }

/* Sum of n words read by n_threads threads (benchmarks: the read-bandwidth roofline). */
uint64_t gk_read_sum(const uint64_t *p, int64_t n, int n_threads);

#endif
