/* Quantize a row of n floats, with llama.cpp's reference rounding (its quantize_row_*_ref), so the
 * bytes match llama.cpp and the gguf package. Q8_1 and Q8_K are the activation formats of vec_dot. */
#include <math.h>

#include "quants.h"

#define MIN GK_MIN

void quantize_row_f32(const float *restrict x, void *restrict y, int64_t n) { memcpy(y, x, n * sizeof(float)); }

void quantize_row_f16(const float *restrict x, void *restrict vy, int64_t n) {
    gk_fp16 *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = gk_fp32_to_fp16(x[i]);
}

void quantize_row_bf16(const float *restrict x, void *restrict vy, int64_t n) {
    gk_bf16 *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = gk_fp32_to_bf16(x[i]);
}

static void min_max(const float *x, int n, float *min, float *max) {
    *min = INFINITY;
    *max = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

void quantize_row_q4_0(const float *restrict x, void *restrict vy, int64_t n) {
    block_q4_0 *y = vy;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        const float d = gk_signed_absmax(x, QK4_0, NULL) / -8, id = d ? 1.0f / d : 0.0f;
        y[i].d = gk_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const uint8_t q0 = MIN(15, (int8_t)(x[j] * id + 8.5f));
            const uint8_t q1 = MIN(15, (int8_t)(x[QK4_0 / 2 + j] * id + 8.5f));
            y[i].qs[j] = q0 | (q1 << 4);
        }
    }
}

void quantize_row_q4_1(const float *restrict x, void *restrict vy, int64_t n) {
    block_q4_1 *y = vy;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float min, max;
        min_max(x, QK4_1, &min, &max);
        const float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
        y[i].d = gk_fp32_to_fp16(d);
        y[i].m = gk_fp32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const uint8_t q0 = MIN(15, (int8_t)((x[j] - min) * id + 0.5f));
            const uint8_t q1 = MIN(15, (int8_t)((x[QK4_1 / 2 + j] - min) * id + 0.5f));
            y[i].qs[j] = q0 | (q1 << 4);
        }
    }
}

void quantize_row_q5_0(const float *restrict x, void *restrict vy, int64_t n) {
    block_q5_0 *y = vy;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        const float d = gk_signed_absmax(x, QK5_0, NULL) / -16, id = d ? 1.0f / d : 0.0f;
        y[i].d = gk_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const uint8_t q0 = MIN(31, (int8_t)(x[j] * id + 16.5f));
            const uint8_t q1 = MIN(31, (int8_t)(x[QK5_0 / 2 + j] * id + 16.5f));
            y[i].qs[j] = (q0 & 0x0F) | ((q1 & 0x0F) << 4);
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void quantize_row_q5_1(const float *restrict x, void *restrict vy, int64_t n) {
    block_q5_1 *y = vy;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float min, max;
        min_max(x, QK5_1, &min, &max);
        const float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
        y[i].d = gk_fp32_to_fp16(d);
        y[i].m = gk_fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const uint8_t q0 = (uint8_t)((x[j] - min) * id + 0.5f);
            const uint8_t q1 = (uint8_t)((x[QK5_1 / 2 + j] - min) * id + 0.5f);
            y[i].qs[j] = (q0 & 0x0F) | ((q1 & 0x0F) << 4);
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void quantize_row_q8_0(const float *restrict x, void *restrict vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = gk_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void quantize_row_q8_1(const float *restrict x, void *restrict vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = gk_fp32_to_fp16(d);
        y[i].s = gk_fp32_to_fp16(sum * d);
    }
}

void quantize_row_q8_0s(const float *restrict x, void *restrict vy, int64_t n) {
    block_q8_0s *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_0; j++) sum += y[i].qs[j] = (int8_t)roundf(x[j] * id);
        y[i].d = gk_fp32_to_fp16(d);
        y[i].s = (int16_t)sum;
    }
}

void quantize_row_q8_K(const float *restrict x, void *restrict vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        const float max = gk_signed_absmax(x, QK_K, NULL);
        if (max == 0.0f) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const float iscale = -127.f / max; /* the largest magnitude maps to -127 exactly */
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)MIN(127, gk_nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}
