/* blas.c - OpenBLAS's cblas, loaded with the kernel the CPU's features call for.
 *
 * OpenBLAS picks its kernel ("core") once, in a constructor that runs when
 * the library is loaded: from OPENBLAS_CORETYPE, else from a table of CPU
 * model numbers, and a model newer than its table gets the SSE3 kernel
 * (Debian's 0.3.21 on a family 6 model 207 Xeon with AVX-512: Prescott,
 * a fifth of the speed). So mnistd does not link OpenBLAS. blas_load, a
 * constructor of our own, runs before main and before any thread exists:
 * it reads cpuid, chooses the kernel (blas_choose), puts it in
 * OPENBLAS_CORETYPE for the library's constructor, dlopen()s the library,
 * and puts the environment back as it was. The function table it fills is
 * written there once and only read afterwards. */
#include "blas.h"

#include "conv_kernel.h"

#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef MN_OPENBLAS_SONAME
#define MN_OPENBLAS_SONAME "libopenblas.so.0"
#endif

/* Widest first. SkylakeX is OpenBLAS's AVX-512 kernel (its Cooperlake core
 * adds bf16 routines; its sgemm measured the same: README, Performance);
 * Haswell its AVX2+FMA one, which its Zen cores reuse. */
static const BlasKernel levels[] = {
    {"avx512", "SkylakeX"}, {"avx2", "Haswell"}, {"avx", "Sandybridge"},
    {"sse3", "Prescott"},   {"sse2", "Opteron"},
};
/* Other names OpenBLAS may report, for the instruction set shown beside them. */
static const BlasKernel aliases[] = {
    {"avx512", "Cooperlake"}, {"avx512", "SapphireRapids"}, {"avx2", "Zen"},
};

BlasKernel blas_choose(const CpuFeatures *f)
{
    /* F, DQ, BW and VL: what every AVX-512 CPU since Skylake-SP (and AMD's
     * Zen 4) has, and what OpenBLAS's AVX-512 kernels may use. */
    bool avx512 = f->avx512f && f->avx512dq && f->avx512bw && f->avx512vl && f->os_avx512;
    bool avx2 = f->avx2 && f->fma && f->os_avx;
    int i = avx512 && avx2 ? 0 : avx2 ? 1 : f->avx && f->os_avx ? 2 : f->sse3 ? 3 : 4;
    return levels[i];
}

static const char *isa_of(const char *kernel)
{
    for (size_t i = 0; kernel && i < sizeof levels / sizeof levels[0]; i++)
        if (strcasecmp(kernel, levels[i].kernel) == 0)
            return levels[i].isa;
    for (size_t i = 0; kernel && i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(kernel, aliases[i].kernel) == 0)
            return aliases[i].isa;
    return "unknown";
}

const char *blas_kernel_named(const char *name)
{
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcasecmp(name, levels[i].isa) == 0)
            return levels[i].kernel;
    return name;
}

typedef void (*SgemmFn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                        blasint, blasint, float, const float *, blasint, const float *, blasint,
                        float, float *, blasint);
typedef void (*SgemvFn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, blasint, blasint, float,
                        const float *, blasint, const float *, blasint, float, float *, blasint);

static struct {
    SgemmFn sgemm;
    SgemvFn sgemv;
    void (*set_num_threads)(int);
    int (*get_num_threads)(void);
    BlasInfo info;
} lib;

/* Like the dynamic loader when a library is missing: a message and exit 127
 * before main. Nothing a user sends can get here. */
static void *need(void *h, const char *sym)
{
    void *p = h ? dlsym(h, sym) : NULL;
    if (!p) {
        fprintf(stderr, "mnistd: cannot use %s (%s): %s; install libopenblas0-pthread\n",
                MN_OPENBLAS_SONAME, sym, dlerror());
        _exit(127);
    }
    return p;
}

/* Where an instruction set stands in levels[], widest first. */
static size_t level_of(const char *isa)
{
    size_t i = 0;
    while (i + 1 < sizeof levels / sizeof levels[0] && strcmp(isa, levels[i].isa) != 0)
        i++;
    return i;
}

/* Our own kernels follow the instruction set of the GEMM kernel that runs,
 * but never past what the CPU has: a forced OpenBLAS kernel the CPU lacks
 * is OpenBLAS's to refuse, and code of ours must not fault. */
static const char *conv_isa(const BlasInfo *info)
{
    const char *runs = strcmp(info->isa, "unknown") ? info->isa : info->chosen.isa;
    return level_of(runs) >= level_of(info->chosen.isa) ? runs : info->chosen.isa;
}

/* An environment variable set for the library's constructor alone, then
 * put back as the caller had it. */
typedef struct {
    const char *name;
    bool had;
    char value[64];
} EnvOverride;

static void env_override(EnvOverride *o, const char *name, const char *value)
{
    const char *theirs = getenv(name);
    *o = (EnvOverride){.name = name, .had = theirs != NULL};
    if (theirs)
        snprintf(o->value, sizeof o->value, "%s", theirs);
    if (value)
        setenv(name, value, 1);
}

static void env_restore(const EnvOverride *o)
{
    if (o->had)
        setenv(o->name, o->value, 1);
    else
        unsetenv(o->name);
}

__attribute__((constructor)) static void blas_load(void)
{
    BlasInfo *info = &lib.info;
    cpu_detect(&info->cpu);
    info->chosen = blas_choose(&info->cpu);
    const char *forced = getenv("MNISTD_KERNEL"), *theirs = getenv("OPENBLAS_CORETYPE");
    info->chosen_by = "cpu features";
    const char *want = info->chosen.kernel;
    if (forced && *forced && strcasecmp(forced, "auto") != 0) {
        info->chosen_by = "MNISTD_KERNEL";
        want = blas_kernel_named(forced);
    } else if (theirs && *theirs) {
        info->chosen_by = "OPENBLAS_CORETYPE";
        want = NULL;
    }
    /* OpenBLAS starts a worker per CPU as it loads, and an idle worker
     * spins in sched_yield for a tenth of a second after its last job: a
     * core taken from our own threads at every start, for GEMMs that run
     * on one thread (blas_threads_wanted). It grows the pool if asked for
     * more later; a count the caller set is left to OpenBLAS. */
    char threads[16];
    snprintf(threads, sizeof threads, "%d", blas_threads_wanted());
    bool caller_counts = getenv("OPENBLAS_NUM_THREADS") || getenv("OMP_NUM_THREADS");
    EnvOverride core, count;
    env_override(&core, "OPENBLAS_CORETYPE", want);
    env_override(&count, "OPENBLAS_NUM_THREADS", caller_counts ? NULL : threads);
    void *h = dlopen(MN_OPENBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    env_restore(&count);
    env_restore(&core);
    lib.sgemm = (SgemmFn)need(h, "cblas_sgemm");
    lib.sgemv = (SgemvFn)need(h, "cblas_sgemv");
    lib.set_num_threads = (void (*)(int))need(h, "openblas_set_num_threads");
    lib.get_num_threads = (int (*)(void))need(h, "openblas_get_num_threads");
    char *(*corename)(void) = (char *(*)(void))need(h, "openblas_get_corename");
    info->kernel = corename();
    info->isa = isa_of(info->kernel);
    info->conv_isa = conv_kernel_use(conv_isa(info));
}

const BlasInfo *blas_info(void)
{
    return &lib.info;
}

void blas_info_json(char *out, size_t cap)
{
    const BlasInfo *b = &lib.info;
    snprintf(out, cap,
             "\"cpu\":\"%s\",\"isa\":\"%s\",\"kernel\":\"%s\",\"kernel_chosen_by\":\"%s\","
             "\"conv_kernel\":\"direct-%s+winograd\"",
             b->cpu.brand, b->isa, b->kernel, b->chosen_by, b->conv_isa);
}

void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
               const float *b, float beta, float *c)
{
    /* One row (a prediction of one image): a matrix-vector product. GEMM
     * would first pack all of B, which costs more than the product itself. */
    if (m == 1 && !ta) {
        lib.sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? n : k, tb ? k : n, alpha, b,
                  tb ? k : n, a, 1, beta, c, 1);
        return;
    }
    lib.sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

int blas_threads_wanted(void)
{
    const char *t = getenv("MNISTD_BLAS_THREADS");
    int n = t && *t ? atoi(t) : 1;
    return n > 0 ? n : 1;
}

void blas_set_threads(int n)
{
    lib.set_num_threads(n);
}

int blas_threads(void)
{
    return lib.get_num_threads();
}
