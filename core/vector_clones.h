/* vector_clones.h - elementwise loops at the CPU's vector width. */
#ifndef MN_VECTOR_CLONES_H
#define MN_VECTOR_CLONES_H

/* On a function whose loops the compiler vectorises (elementwise passes,
 * pooling): a copy for AVX-512 (x86-64-v4: F, BW, CD, DQ, VL and FMA;
 * GCC's plain "avx512f" clone left loops of fmaf scalar), one for AVX2
 * with FMA (x86-64-v3) and one for the x86-64 baseline, the loader
 * running the widest the CPU has (GCC's ifunc, from cpuid). The same bits
 * whichever runs for compares, max and IEEE arithmetic (C11 mode contracts
 * no multiply-add); glibc's vector exp and its kin (activation.c) round
 * their own way at each width, so there the bits hold per instruction set. */
/* Not under ThreadSanitizer (make tsan): the loader runs the ifunc
 * resolvers before TSan's runtime is up, and the instrumented resolver
 * then jumps to nowhere (a silent SIGSEGV at start). */
#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define MN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MN_VECTOR_CLONES
#endif

/* On a helper that a cloned function calls: inlined into each clone, so it
 * is compiled at that clone's width. A helper left a function of its own is
 * compiled once, for the baseline, and runs at SSE2's width under all of
 * them (max pooling's pool_pixel did, README Performance). */
#define MN_CLONE_INLINE static inline __attribute__((always_inline))

#endif
