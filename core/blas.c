/* blas.c - row-major GEMM over OpenBLAS's cblas. */
#include "blas.h"

#include <cblas.h>
#include <stdlib.h>

void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
               const float *b, float beta, float *c)
{
    /* One row (a prediction of one image): a matrix-vector product. GEMM
     * would first pack all of B, which costs more than the product itself. */
    if (m == 1 && !ta) {
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? n : k, tb ? k : n, alpha,
                    b, tb ? k : n, a, 1, beta, c, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

int blas_threads_wanted(void)
{
    const char *t = getenv("MNISTD_BLAS_THREADS");
    int n = t && *t ? atoi(t) : 1;
    return n > 0 ? n : 1;
}

void blas_set_threads(int n)
{
    openblas_set_num_threads(n);
}
