/* blas.h - the only door to the GEMM kernels: row-major GEMM with the
 * transposes named, and the choice of kernel from what the CPU can do.
 * Every dense and convolution product goes through here, so the library,
 * its kernel, layout and threading are decided in one place. */
#ifndef MN_BLAS_H
#define MN_BLAS_H

#include <stdbool.h>
#include <stddef.h>

#include "cpu.h"

/* C (m x n) = alpha * op(A) * op(B) + beta * C, all row-major; op(A) is m x k.
 * ta/tb: whether A/B are stored transposed (A as k x m, B as n x k). */
void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
               const float *b, float beta, float *c);

/* Caps the BLAS thread count (the server keeps training from starving serving). */
void blas_set_threads(int n);
int blas_threads(void);

/* MNISTD_BLAS_THREADS, default 1: at these networks' sizes one BLAS thread
 * beats two (hand-offs cost more than the small GEMMs they split), and one
 * thread sums in one fixed order, so a seed gives the same weights and the
 * server answers exactly as `mnistd predict` does. */
int blas_threads_wanted(void);

/* A kernel: the widest instruction set it uses and OpenBLAS's name for it
 * (a value of OPENBLAS_CORETYPE). Static strings. */
typedef struct {
    const char *isa;    /* "avx512", "avx2", "avx", "sse3", "sse2" */
    const char *kernel; /* "SkylakeX", "Haswell", "Sandybridge", "Prescott", "Opteron" */
} BlasKernel;

/* The kernel for these features: the widest instruction set the CPU has
 * and the OS saves, whatever its vendor, family or model. Pure. */
BlasKernel blas_choose(const CpuFeatures *f);
/* The OpenBLAS core MNISTD_KERNEL's value means: an instruction set
 * ("avx2") stands for its kernel ("Haswell"), anything else is a core. */
const char *blas_kernel_named(const char *name);

/* What runs, as loaded at start (see blas.c). Static; never freed. */
typedef struct {
    CpuFeatures cpu;
    BlasKernel chosen;     /* blas_choose(&cpu) */
    const char *kernel;    /* the kernel OpenBLAS says it runs */
    const char *isa;       /* that kernel's instruction set, or "unknown" */
    const char *chosen_by; /* "cpu features", "MNISTD_KERNEL" or "OPENBLAS_CORETYPE" */
    const char *conv_isa;  /* the variant of mnistd's own convolution (conv_kernel.h) */
} BlasInfo;
const BlasInfo *blas_info(void);

/* `"cpu":"..","isa":"..","kernel":"..","kernel_chosen_by":"..","conv_kernel":"direct-..+winograd"` into out:
 * the fields every log line and benchmark record that names the kernel has. */
void blas_info_json(char *out, size_t cap);

#endif
