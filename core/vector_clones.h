/* vector_clones.h - elementwise loops at the CPU's vector width. */
#ifndef MN_VECTOR_CLONES_H
#define MN_VECTOR_CLONES_H

/* On a function whose loops the compiler vectorises (elementwise passes,
 * pooling): a copy for AVX-512, one for AVX2 and the x86-64 baseline, the
 * widest the CPU has chosen by the loader from cpuid (GCC's ifunc). The
 * same bits whichever runs: C11 mode contracts no multiply-add, and
 * compares, max and IEEE arithmetic round alike at every width. */
#if defined(__x86_64__) && !defined(__clang__)
#define MN_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MN_VECTOR_CLONES
#endif

#endif
