/* The one table from type to functions, per SIMD level: the generic table, with the SIMD variants
 * put over it where they exist. */
#include "quants.h"

#define T(id, nm, bs, ts, to, from, vdt, vd) \
    [GK_TYPE_##id] = {.name = nm, .block_size = bs, .type_size = ts, .to_float = to, .from_float = from, \
                      .vec_dot_type = GK_TYPE_##vdt, .vec_dot = vd}

static const gk_type_traits generic[GK_TYPE_COUNT] = {
    T(F32, "F32", 1, 4, dequantize_row_f32, quantize_row_f32, F32, vec_dot_f32_f32),
    T(F16, "F16", 1, 2, dequantize_row_f16, quantize_row_f16, F32, vec_dot_f16_f32),
    T(BF16, "BF16", 1, 2, dequantize_row_bf16, quantize_row_bf16, F32, vec_dot_bf16_f32),
    T(Q4_0, "Q4_0", QK4_0, sizeof(block_q4_0), dequantize_row_q4_0, quantize_row_q4_0, Q8_0, vec_dot_q4_0_q8_0),
    T(Q4_1, "Q4_1", QK4_1, sizeof(block_q4_1), dequantize_row_q4_1, quantize_row_q4_1, Q8_0S, vec_dot_q4_1_q8_0s),
    T(Q5_0, "Q5_0", QK5_0, sizeof(block_q5_0), dequantize_row_q5_0, quantize_row_q5_0, Q8_0, vec_dot_q5_0_q8_0),
    T(Q5_1, "Q5_1", QK5_1, sizeof(block_q5_1), dequantize_row_q5_1, quantize_row_q5_1, Q8_0S, vec_dot_q5_1_q8_0s),
    T(Q8_0, "Q8_0", QK8_0, sizeof(block_q8_0), dequantize_row_q8_0, quantize_row_q8_0, Q8_0, vec_dot_q8_0_q8_0),
    T(Q8_1, "Q8_1", QK8_1, sizeof(block_q8_1), dequantize_row_q8_1, quantize_row_q8_1, Q8_1, NULL),
    T(Q8_0S, "Q8_0S", QK8_0, sizeof(block_q8_0s), dequantize_row_q8_0s, quantize_row_q8_0s, Q8_0S, NULL),
    T(IQ4_NL, "IQ4_NL", QK4_NL, sizeof(block_iq4_nl), dequantize_row_iq4_nl, quantize_row_iq4_nl, Q8_0, vec_dot_iq4_nl_q8_0),
    T(Q2_K, "Q2_K", QK_K, sizeof(block_q2_K), dequantize_row_q2_K, quantize_row_q2_K, Q8_K, vec_dot_q2_K_q8_K),
    T(Q3_K, "Q3_K", QK_K, sizeof(block_q3_K), dequantize_row_q3_K, quantize_row_q3_K, Q8_K, vec_dot_q3_K_q8_K),
    T(Q4_K, "Q4_K", QK_K, sizeof(block_q4_K), dequantize_row_q4_K, quantize_row_q4_K, Q8_K, vec_dot_q4_K_q8_K),
    T(Q5_K, "Q5_K", QK_K, sizeof(block_q5_K), dequantize_row_q5_K, quantize_row_q5_K, Q8_K, vec_dot_q5_K_q8_K),
    T(Q6_K, "Q6_K", QK_K, sizeof(block_q6_K), dequantize_row_q6_K, quantize_row_q6_K, Q8_K, vec_dot_q6_K_q8_K),
    T(Q8_K, "Q8_K", QK_K, sizeof(block_q8_K), dequantize_row_q8_K, quantize_row_q8_K, Q8_K, NULL),
};

/* SIMD overrides: (type, vec_dot) pairs per level; each level also takes the ones below it. */
typedef struct {
    gk_type type;
    gk_vec_dot_fn vec_dot;
    gk_vec_dot_rows_fn vec_dot_rows;
    int (*rows_per_dot)(void);
    gk_gemm_fn gemm;
    gk_from_float_fn from_float; /* a faster quantizer with the same bits, or NULL: keep the lower level's */
} override;

#if defined(__x86_64__)
static const override avx2_overrides[] = {
    {GK_TYPE_F32, vec_dot_f32_f32_avx2, NULL, NULL, NULL},   {GK_TYPE_F16, vec_dot_f16_f32_avx2, NULL, NULL, NULL},
    {GK_TYPE_BF16, vec_dot_bf16_f32_avx2, NULL, NULL, NULL}, {GK_TYPE_Q4_0, vec_dot_q4_0_q8_0_avx2, NULL, NULL, NULL},
    {GK_TYPE_Q4_1, vec_dot_q4_1_q8_0s_avx2, NULL, NULL, NULL}, {GK_TYPE_Q8_0, vec_dot_q8_0_q8_0_avx2, NULL, NULL, NULL},
    {GK_TYPE_Q4_K, vec_dot_q4_K_q8_K_avx2, NULL, NULL, NULL}, {GK_TYPE_Q6_K, vec_dot_q6_K_q8_K_avx2, NULL, NULL, NULL},
    {GK_TYPE_Q5_0, vec_dot_q5_0_q8_0_avx2, NULL, NULL, NULL}, {GK_TYPE_Q5_1, vec_dot_q5_1_q8_0s_avx2, NULL, NULL, NULL},
    {GK_TYPE_IQ4_NL, vec_dot_iq4_nl_q8_0_avx2, NULL, NULL, NULL}, {GK_TYPE_Q5_K, vec_dot_q5_K_q8_K_avx2, NULL, NULL, NULL},
    {GK_TYPE_Q2_K, vec_dot_q2_K_q8_K_avx2, NULL, NULL, NULL}, {GK_TYPE_Q3_K, vec_dot_q3_K_q8_K_avx2, NULL, NULL, NULL},
};
static const override avx512_overrides[] = {
    {GK_TYPE_F32, vec_dot_f32_f32_avx512, NULL, NULL, gemm_f32_f32_avx512},
    {GK_TYPE_F16, vec_dot_f16_f32_avx512, NULL, NULL, gemm_f16_f32_avx512},
    {GK_TYPE_BF16, vec_dot_bf16_f32_avx2, NULL, NULL, gemm_bf16_f32_avx512},
    {GK_TYPE_Q4_0, vec_dot_q4_0_q8_0_avx512, vec_dot_rows_q4_0_q8_0_avx512, gk_rows_avx512, gemm_q4_0_q8_0_avx512},
    {GK_TYPE_Q4_1, vec_dot_q4_1_q8_0s_avx512, vec_dot_rows_q4_1_q8_0s_avx512, gk_rows_avx512, gemm_q4_1_q8_0s_avx512},
    {GK_TYPE_Q5_0, vec_dot_q5_0_q8_0_avx512, vec_dot_rows_q5_0_q8_0_avx512, gk_rows_avx512, gemm_q5_0_q8_0_avx512},
    {GK_TYPE_Q5_1, vec_dot_q5_1_q8_0s_avx512, vec_dot_rows_q5_1_q8_0s_avx512, gk_rows_avx512, gemm_q5_1_q8_0s_avx512},
    {GK_TYPE_IQ4_NL, vec_dot_iq4_nl_q8_0_avx512, vec_dot_rows_iq4_nl_q8_0_avx512, gk_rows_avx512, gemm_iq4_nl_q8_0_avx512},
    {GK_TYPE_Q8_0, vec_dot_q8_0_q8_0_avx2, NULL, NULL, gemm_q8_0_q8_0_avx512, quantize_row_q8_0_avx512},
    {GK_TYPE_Q8_0S, NULL, NULL, NULL, NULL, quantize_row_q8_0s_avx512}, /* activations only */
    /* K-quant dots stay AVX2: the super-block unpacking below, written for batches, was slower
     * from DRAM (Q4_K 19 against 28 GB/s at 2 threads) */
    {GK_TYPE_Q4_K, vec_dot_q4_K_q8_K_avx2, NULL, NULL, gemm_q4_K_q8_K_avx512},
    {GK_TYPE_Q6_K, vec_dot_q6_K_q8_K_avx2, NULL, NULL, gemm_q6_K_q8_K_avx512},
};
#endif

static gk_type_traits tables[GK_SIMD_COUNT][GK_TYPE_COUNT];
static int tables_ready;

static void apply(gk_type_traits *table, const override *o, size_t count) {
    for (size_t i = 0; i < count; i++) {
        table[o[i].type].vec_dot = o[i].vec_dot;
        /* a level without a rows form drops the lower level's */
        table[o[i].type].vec_dot_rows = o[i].vec_dot_rows;
        table[o[i].type].rows_per_dot = o[i].rows_per_dot ? o[i].rows_per_dot() : 1;
        table[o[i].type].gemm = o[i].gemm;
        if (o[i].from_float) table[o[i].type].from_float = o[i].from_float;
    }
}

static void build_tables(void) {
    for (int level = 0; level < GK_SIMD_COUNT; level++) memcpy(tables[level], generic, sizeof(generic));
#if defined(__x86_64__)
    for (int level = GK_SIMD_AVX2; level < GK_SIMD_COUNT; level++)
        apply(tables[level], avx2_overrides, sizeof(avx2_overrides) / sizeof(override));
    apply(tables[GK_SIMD_AVX512], avx512_overrides, sizeof(avx512_overrides) / sizeof(override));
#endif
    tables_ready = 1;
}

const gk_type_traits *gk_type_traits_at(int type, gk_simd_level level) {
    if (!tables_ready) build_tables(); /* first call happens at module import, under the GIL */
    if (type < 0 || type >= GK_TYPE_COUNT || (unsigned)level >= GK_SIMD_COUNT || !tables[level][type].name)
        return NULL;
    return &tables[level][type];
}

const gk_type_traits *gk_type_traits_get(int type) { return gk_type_traits_at(type, gk_active_level); }
