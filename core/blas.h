/* blas.h - the only door to cblas: row-major GEMM with the transposes named.
 * Every dense and convolution product goes through here, so the BLAS choice,
 * layout and threading are decided in one place. */
#ifndef MN_BLAS_H
#define MN_BLAS_H

#include <stdbool.h>

/* C (m x n) = alpha * op(A) * op(B) + beta * C, all row-major; op(A) is m x k.
 * ta/tb: whether A/B are stored transposed (A as k x m, B as n x k). */
void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
               const float *b, float beta, float *c);

/* Caps the BLAS thread count (the server keeps training from starving serving). */
void blas_set_threads(int n);

/* MNISTD_BLAS_THREADS, default 1: at these networks' sizes one BLAS thread
 * beats two (hand-offs cost more than the small GEMMs they split), and one
 * thread sums in one fixed order, so a seed gives the same weights and the
 * server answers exactly as `mnistd predict` does. */
int blas_threads_wanted(void);

#endif
