/* Dot product of two float vectors: the generic C version. */
#include "gk.h"

float dot_f32(const float *x, const float *y, int64_t n) {
    /* four partial sums: the same association as the SIMD lanes, and fast */
    double acc[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            acc[k] += (double)x[i + k] * y[i + k];
    for (; i < n; i++)
        acc[0] += (double)x[i] * y[i];
    return (float)(acc[0] + acc[1] + acc[2] + acc[3]);
}
