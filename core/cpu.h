/* cpu.h - what this CPU can do, as cpuid and xgetbv say: vendor, brand
 * string, family and model (for the record only) and the instruction-set
 * features the GEMM kernel choice needs (blas.h). Nothing here is decided
 * from a model number, and nothing allocates. */
#ifndef MN_CPU_H
#define MN_CPU_H

#include <stdbool.h>

typedef struct {
    char vendor[13];  /* "GenuineIntel", "AuthenticAMD", ... */
    char brand[49];   /* the brand string, as /proc/cpuinfo's "model name"; JSON- and label-safe */
    int family, model; /* display family and model: reported, never used to choose */
    bool sse2, sse3, avx, fma, avx2;
    bool avx512f, avx512dq, avx512bw, avx512vl, avx512_bf16, amx_tile;
    /* What the OS saves on a context switch (XCR0): without it the wide
     * registers are unusable whatever cpuid says. */
    bool os_avx;    /* XMM and YMM state */
    bool os_avx512; /* opmask, ZMM0-15 upper halves, ZMM16-31 */
} CpuFeatures;

/* Fills f from this CPU (cpuid leaves 0, 1, 7 and 0x80000002-4, and xgetbv). */
void cpu_detect(CpuFeatures *f);

#endif
