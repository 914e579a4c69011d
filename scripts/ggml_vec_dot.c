/*
 * The peer's side of scripts/neon_insns.py: REPS mat-vecs of llama.cpp's CPU kernels for one
 * GGML type, through ggml's public CPU API (the type's activation quantizer, then its vec_dot
 * per row), on ROWS x COLS random block bytes (f16 fields kept finite). Built outside the
 * repository against an aarch64 build of ggml (docs/benchmarks.md has the commands).
 *
 *   ggml_vec_dot TYPE_ID ROWS COLS REPS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ggml-cpu.h"
#include "ggml.h"

static uint32_t next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: ggml_vec_dot TYPE_ID ROWS COLS REPS\n");
        return 2;
    }
    enum ggml_type type = (enum ggml_type)atoi(argv[1]);
    int rows = atoi(argv[2]), cols = atoi(argv[3]), reps = atoi(argv[4]);
    ggml_cpu_init();
    const struct ggml_type_traits_cpu *traits = ggml_get_type_traits_cpu(type);
    size_t row_bytes = ggml_row_size(type, cols);
    size_t act_bytes = ggml_row_size(traits->vec_dot_type, cols);
    uint8_t *w = malloc(row_bytes * rows);
    float *x = malloc(sizeof(float) * cols);
    void *act = malloc(act_bytes);
    float *y = malloc(sizeof(float) * rows);
    if (!w || !x || !act || !y)
        return 1;
    uint32_t seed = 12345;
    for (size_t i = 0; i < row_bytes * rows; i++)
        w[i] = (uint8_t)next(&seed);
    /* Every other byte below 0x3c: no f16/bf16 field is infinite or NaN. */
    for (size_t i = 1; i < row_bytes * rows; i += 2)
        w[i] &= 0x3b;
    for (int i = 0; i < cols; i++)
        x[i] = (float)(next(&seed) % 2001) / 1000.0f - 1.0f;
    double sum = 0;
    for (int k = 0; k < reps; k++) {
        const void *a = x;
        if (traits->from_float) {
            traits->from_float(x, act, cols);
            a = act;
        }
        for (int r = 0; r < rows; r++)
            traits->vec_dot(cols, &y[r], 0, w + (size_t)r * row_bytes, 0, a, 0, 1);
        sum += y[0];
    }
    printf("%g\n", sum);
    return 0;
}
