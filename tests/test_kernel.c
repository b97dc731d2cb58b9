/* test_kernel.c - the GEMM kernel chosen from CPU features (blas_choose:
 * features in, kernel out, whatever the vendor or model number), cpuid
 * read as GCC's own detection reads it, the library running the kernel
 * chosen (or the one an environment variable forces), and GEMM results
 * that agree with a plain reference whichever kernel runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "blas.h"
#include "conv_kernel.h"
#include "check_util.h"
#include "rng.h"

/* ---- the choice: features in, kernel out ---- */

static CpuFeatures sse2_only(void)
{
    return (CpuFeatures){.vendor = "GenuineIntel", .family = 15, .model = 2, .sse2 = true};
}

static CpuFeatures with_avx2(CpuFeatures f)
{
    f.sse3 = f.avx = f.fma = f.avx2 = f.os_avx = true;
    return f;
}

static CpuFeatures with_avx512(CpuFeatures f)
{
    f = with_avx2(f);
    f.avx512f = f.avx512dq = f.avx512bw = f.avx512vl = f.os_avx512 = true;
    return f;
}

static CpuFeatures cpu(const char *vendor, int family, int model, CpuFeatures f)
{
    snprintf(f.vendor, sizeof f.vendor, "%s", vendor);
    f.family = family;
    f.model = model;
    return f;
}

static CpuFeatures sapphire_like(int model)
{
    CpuFeatures f = cpu("GenuineIntel", 6, model, with_avx512(sse2_only()));
    f.avx512_bf16 = f.amx_tile = true;
    return f;
}

static CpuFeatures knights_landing(void)
{
    CpuFeatures f = cpu("GenuineIntel", 6, 87, with_avx2(sse2_only()));
    f.avx512f = f.os_avx512 = true; /* F and CD, no DQ, BW or VL */
    return f;
}

static CpuFeatures os_without(CpuFeatures f, bool zmm, bool ymm)
{
    f.os_avx512 = f.os_avx512 && !zmm && !ymm;
    f.os_avx = f.os_avx && !ymm;
    return f;
}

static CpuFeatures sandy_bridge(void)
{
    CpuFeatures f = cpu("GenuineIntel", 6, 42, sse2_only());
    f.sse3 = f.avx = f.os_avx = true;
    return f;
}

static CpuFeatures prescott(void)
{
    CpuFeatures f = sse2_only();
    f.sse3 = true;
    return f;
}

typedef struct {
    const char *name;
    CpuFeatures f;
    const char *isa, *kernel;
} ChoiceCase;

static ChoiceCase choice_cases[16];
static int n_choice_cases;

static void add_case(const char *name, CpuFeatures f, const char *isa, const char *kernel)
{
    choice_cases[n_choice_cases++] = (ChoiceCase){name, f, isa, kernel};
}

static void make_choice_cases(void)
{
    n_choice_cases = 0;
    add_case("Intel Xeon family 6 model 207, AVX-512 + bf16 + AMX (OpenBLAS 0.3.21: Prescott)",
             sapphire_like(207), "avx512", "SkylakeX");
    add_case("Intel, a model number no library has seen (6/255), AVX-512", sapphire_like(255),
             "avx512", "SkylakeX");
    add_case("Intel Skylake-SP (6/85), AVX-512", cpu("GenuineIntel", 6, 85, with_avx512(sse2_only())),
             "avx512", "SkylakeX");
    add_case("AMD EPYC Zen 3 (25/1), AVX2 + FMA", cpu("AuthenticAMD", 25, 1, with_avx2(sse2_only())),
             "avx2", "Haswell");
    add_case("AMD EPYC Zen 4 (25/17), AVX-512", cpu("AuthenticAMD", 25, 17, with_avx512(sse2_only())),
             "avx512", "SkylakeX");
    add_case("a vendor nobody knows, AVX2 + FMA", cpu("NewVendorInc", 42, 7, with_avx2(sse2_only())),
             "avx2", "Haswell");
    add_case("Knights Landing: AVX-512F without DQ/BW/VL", knights_landing(), "avx2", "Haswell");
    add_case("AVX-512 in cpuid, ZMM state not saved by the OS",
             os_without(sapphire_like(143), true, false), "avx2", "Haswell");
    add_case("AVX2 in cpuid, YMM state not saved by the OS",
             os_without(cpu("AuthenticAMD", 23, 49, with_avx2(sse2_only())), true, true), "sse3",
             "Prescott");
    add_case("Sandy Bridge: AVX, no AVX2", sandy_bridge(), "avx", "Sandybridge");
    add_case("SSE3 only (Pentium 4 Prescott)", prescott(), "sse3", "Prescott");
    add_case("SSE2 only (first x86-64)", sse2_only(), "sse2", "Opteron");
}

START_TEST(test_kernel_from_features)
{
    make_choice_cases();
    ck_assert_int_lt(_i, n_choice_cases);
    const ChoiceCase *c = &choice_cases[_i];
    BlasKernel k = blas_choose(&c->f);
    ck_assert_msg(strcmp(k.isa, c->isa) == 0 && strcmp(k.kernel, c->kernel) == 0,
                  "%s: got %s/%s, want %s/%s", c->name, k.isa, k.kernel, c->isa, c->kernel);
}
END_TEST

/* The same features give the same kernel under every vendor, family and model. */
START_TEST(test_model_number_never_matters)
{
    make_choice_cases();
    const char *vendors[] = {"GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls"};
    for (int c = 0; c < n_choice_cases; c++)
        for (int v = 0; v < 4; v++)
            for (int family = 5; family <= 26; family++)
                for (int model = 0; model < 256; model += 3) {
                    CpuFeatures f = cpu(vendors[v], family, model, choice_cases[c].f);
                    BlasKernel k = blas_choose(&f);
                    ck_assert_msg(strcmp(k.kernel, choice_cases[c].kernel) == 0,
                                  "%s as %s %d/%d: %s", choice_cases[c].name, vendors[v],
                                  family, model, k.kernel);
                }
}
END_TEST

/* ---- this CPU, this process ---- */

/* cpuid as read here agrees with GCC's own reading (libgcc's cpu model,
 * which also checks what the OS saves). */
START_TEST(test_cpuid_agrees_with_gcc)
{
    CpuFeatures f;
    cpu_detect(&f);
    __builtin_cpu_init();
    ck_assert_int_eq(f.sse3, !!__builtin_cpu_supports("sse3"));
    ck_assert_int_eq(f.avx && f.os_avx, !!__builtin_cpu_supports("avx"));
    ck_assert_int_eq(f.avx2 && f.os_avx, !!__builtin_cpu_supports("avx2"));
    ck_assert_int_eq(f.fma && f.os_avx, !!__builtin_cpu_supports("fma"));
    ck_assert_int_eq(f.avx512f && f.os_avx512, !!__builtin_cpu_supports("avx512f"));
    ck_assert_int_eq(f.avx512bw && f.os_avx512, !!__builtin_cpu_supports("avx512bw"));
    ck_assert_int_eq(f.avx512vl && f.os_avx512, !!__builtin_cpu_supports("avx512vl"));
    ck_assert_int_eq(f.avx512dq && f.os_avx512, !!__builtin_cpu_supports("avx512dq"));
    ck_assert(f.sse2); /* every x86-64 */
    ck_assert_int_gt((int)strlen(f.vendor), 0);
    ck_assert_ptr_null(strpbrk(f.brand, "\"\\\n"));
}
END_TEST

static int vector_rank(const char *isa)
{
    return strcmp(isa, "avx512") == 0 ? 2 : strcmp(isa, "avx2") == 0 ? 1 : 0;
}

/* The library runs what was asked of it: the kernel the features chose,
 * or the one MNISTD_KERNEL or OPENBLAS_CORETYPE names; and the
 * environment is left as it was. Run below under each environment. */
START_TEST(test_library_runs_the_choice)
{
    const BlasInfo *b = blas_info();
    const char *forced = getenv("MNISTD_KERNEL"), *theirs = getenv("OPENBLAS_CORETYPE");
    if (forced && *forced && strcasecmp(forced, "auto") != 0) {
        ck_assert_str_eq(b->chosen_by, "MNISTD_KERNEL");
        const char *want = blas_kernel_named(forced);
        ck_assert_msg(strcasecmp(b->kernel, want) == 0, "%s for %s", b->kernel, forced);
    } else if (theirs && *theirs) {
        ck_assert_str_eq(b->chosen_by, "OPENBLAS_CORETYPE");
        ck_assert_msg(strcasecmp(b->kernel, theirs) == 0, "%s for %s", b->kernel, theirs);
    } else {
        ck_assert_str_eq(b->chosen_by, "cpu features");
        ck_assert_str_eq(b->kernel, b->chosen.kernel);
        ck_assert_str_eq(b->isa, b->chosen.isa);
        ck_assert(!theirs || !*theirs); /* put back as it was: unset */
    }
    /* what the parent gave, put back after the library read ours */
    const char *given = getenv("MNISTD_TEST_CORETYPE");
    if (given)
        ck_assert_str_eq(theirs ? theirs : "", given);
    CpuFeatures f;
    cpu_detect(&f);
    ck_assert_str_eq(blas_choose(&f).kernel, b->chosen.kernel);
    /* our convolution follows the GEMM kernel's instruction set, within the CPU's */
    const char *runs = strcmp(b->isa, "unknown") ? b->isa : b->chosen.isa;
    const char *conv = vector_rank(runs) <= vector_rank(b->chosen.isa) ? runs : b->chosen.isa;
    conv = vector_rank(conv) ? conv : "sse2";
    ck_assert_str_eq(b->conv_isa, conv);
    ck_assert_str_eq(conv_kernel_isa(), conv);
    /* OpenBLAS started the threads mnistd multiplies on, no idle workers
     * beside them, unless the caller gave it a count of its own */
    const char *count = getenv("OPENBLAS_NUM_THREADS");
    if (count)
        ck_assert_int_eq(blas_threads(), atoi(count));
    else if (!getenv("OMP_NUM_THREADS"))
        ck_assert_int_eq(blas_threads(), blas_threads_wanted());
    const char *given_count = getenv("MNISTD_TEST_NUM_THREADS");
    if (given_count)
        ck_assert_str_eq(count ? count : "", given_count);
}
END_TEST

/* This binary again, its Env case alone, under each way of choosing. */
START_TEST(test_each_way_of_choosing)
{
    static const char *envs[] = {
        "env -u MNISTD_KERNEL -u OPENBLAS_CORETYPE -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS",
        "env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS MNISTD_BLAS_THREADS=2",
        "env OPENBLAS_NUM_THREADS=2 MNISTD_TEST_NUM_THREADS=2",
        "env -u OPENBLAS_CORETYPE MNISTD_KERNEL=sse3",
        "env -u MNISTD_KERNEL OPENBLAS_CORETYPE=Haswell",
        "env MNISTD_KERNEL=Sandybridge OPENBLAS_CORETYPE=Haswell MNISTD_TEST_CORETYPE=Haswell",
        "env -u OPENBLAS_CORETYPE MNISTD_KERNEL=auto",
    };
    char self[4096], cmd[8192];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    for (size_t i = 0; i < sizeof envs / sizeof *envs; i++) {
        snprintf(cmd, sizeof cmd, "%s CK_RUN_CASE=Env '%s' 2>&1", envs[i], self);
        int status = -1;
        char *out = check_util_run_cmd(cmd, &status);
        ck_assert_msg(status == 0 && out && strstr(out, "100%: Checks: 1,"), "%s: %s", envs[i],
                      out ? out : "");
        free(out);
    }
}
END_TEST

/* ---- results, whichever kernel ---- */

/* C = op(A) op(B) in double, for comparison. */
static void reference(bool ta, bool tb, int m, int n, int k, const float *a, const float *b,
                      const float *c0, float beta, double *c)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[p * m + i] : a[i * k + p]) *
                     (double)(tb ? b[j * k + p] : b[p * n + j]);
            c[i * n + j] = s + (double)beta * c0[i * n + j];
        }
}

/* The shapes these networks have: im2col's tall thin products, a dense
 * layer's batch, one row (the sgemv path), and their transposes. */
static const int gemm_shapes[][3] = {
    {784, 32, 9}, {196, 64, 144}, {32, 64, 784}, {1, 10, 784}, {1, 64, 49}, {7, 5, 3},
};

START_TEST(test_gemm_agrees_with_reference)
{
    int m = gemm_shapes[_i][0], n = gemm_shapes[_i][1], k = gemm_shapes[_i][2];
    Rng rng;
    rng_seed(&rng, 11 + (uint64_t)_i);
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
    float *c = malloc(sizeof(float) * m * n), *c0 = malloc(sizeof(float) * m * n);
    double *want = malloc(sizeof(double) * m * n);
    for (int i = 0; i < m * k; i++)
        a[i] = 2 * rng_uniform(&rng) - 1;
    for (int i = 0; i < k * n; i++)
        b[i] = 2 * rng_uniform(&rng) - 1;
    for (int i = 0; i < m * n; i++)
        c0[i] = 2 * rng_uniform(&rng) - 1;
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        if (ta && m == 1)
            continue; /* A transposed as one column: not a shape the layers use */
        for (int beta = 0; beta <= 1; beta++) {
            memcpy(c, c0, sizeof(float) * m * n);
            blas_gemm(ta, tb, m, n, k, 1.0f, a, b, (float)beta, c);
            reference(ta, tb, m, n, k, a, b, c0, (float)beta, want);
            for (int i = 0; i < m * n; i++)
                /* float sums of k terms of size <= 1, in any order */
                ck_assert_msg(fabs(c[i] - want[i]) <= 1e-6 * k + 1e-5,
                              "%dx%dx%d ta=%d tb=%d beta=%d [%d]: %.9g vs %.9g", m, n, k, ta,
                              tb, beta, i, c[i], want[i]);
        }
    }
    free(a), free(b), free(c), free(c0), free(want);
}
END_TEST

/* Same inputs, same kernel, same threads: the same bits. */
START_TEST(test_gemm_repeats_bit_for_bit)
{
    enum { M = 6272, N = 64, K = 144 };
    Rng rng;
    rng_seed(&rng, 5);
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c1 = calloc((size_t)M * N, sizeof(float)), *c2 = calloc((size_t)M * N, sizeof(float));
    for (int i = 0; i < M * K; i++)
        a[i] = rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < K * N; i++)
        b[i] = rng_uniform(&rng) - 0.5f;
    blas_gemm(false, false, M, N, K, 1.0f, a, b, 0.0f, c1);
    blas_gemm(false, false, M, N, K, 1.0f, a, b, 0.0f, c2);
    ck_assert(memcmp(c1, c2, sizeof(float) * M * N) == 0);
    free(a), free(b), free(c1), free(c2);
}
END_TEST

static Suite *kernel_suite(void)
{
    Suite *s = suite_create("kernel");
    make_choice_cases();
    TCase *choice = tcase_create("Choice");
    tcase_add_loop_test(choice, test_kernel_from_features, 0, n_choice_cases);
    tcase_add_test(choice, test_model_number_never_matters);
    suite_add_tcase(s, choice);
    TCase *here = tcase_create("Core");
    tcase_add_test(here, test_cpuid_agrees_with_gcc);
    tcase_add_test(here, test_each_way_of_choosing);
    tcase_set_timeout(here, 60);
    suite_add_tcase(s, here);
    TCase *env = tcase_create("Env");
    tcase_add_test(env, test_library_runs_the_choice);
    suite_add_tcase(s, env);
    TCase *gemm = tcase_create("Gemm");
    tcase_add_loop_test(gemm, test_gemm_agrees_with_reference, 0,
                        sizeof gemm_shapes / sizeof *gemm_shapes);
    tcase_add_test(gemm, test_gemm_repeats_bit_for_bit);
    suite_add_tcase(s, gemm);
    return s;
}

MN_TEST_MAIN(kernel_suite)
