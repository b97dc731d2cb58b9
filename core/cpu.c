/* cpu.c - cpuid and xgetbv read once into a CpuFeatures (see cpu.h). Bit
 * positions are Intel SDM vol. 2A, CPUID, and AMD's APM vol. 3 (the same
 * bits for everything read here). */
#include "cpu.h"

#include <cpuid.h>
#include <stdint.h>
#include <string.h>

static bool bit(unsigned reg, int n) { return (reg >> n) & 1u; }

static uint64_t xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* The brand string without its padding, and with nothing that would need
 * escaping in a JSON string or a Prometheus label. */
static void read_brand(char *out, size_t cap)
{
    unsigned r[12] = {0};
    out[0] = '\0';
    /* unsigned in GCC's cpuid.h, int in clang's */
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) < 0x80000004u)
        return;
    for (unsigned i = 0; i < 3; i++)
        __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
    const char *s = (const char *)r;
    size_t n = 0;
    for (size_t i = 0; i < sizeof r && s[i] && n + 1 < cap; i++) {
        char c = s[i];
        bool plain = c >= ' ' && c <= '~' && c != '"' && c != '\\';
        if (plain && !(c == ' ' && (n == 0 || out[n - 1] == ' ')))
            out[n++] = c;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

void cpu_detect(CpuFeatures *f)
{
    memset(f, 0, sizeof *f);
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return;
    unsigned max_leaf = a;
    memcpy(f->vendor, &b, 4);
    memcpy(f->vendor + 4, &d, 4);
    memcpy(f->vendor + 8, &c, 4);
    read_brand(f->brand, sizeof f->brand);

    __get_cpuid(1, &a, &b, &c, &d);
    int base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    f->family = base_family + (base_family == 0xf ? (int)((a >> 20) & 0xff) : 0);
    f->model = base_model | (base_family == 6 || base_family == 0xf ? (int)((a >> 16) & 0xf) << 4 : 0);
    f->sse2 = bit(d, 26);
    f->sse3 = bit(c, 0);
    f->fma = bit(c, 12);
    f->avx = bit(c, 28);
    if (bit(c, 27)) { /* OSXSAVE: xgetbv may be executed */
        uint64_t x = xcr0();
        f->os_avx = (x & 0x6) == 0x6;
        f->os_avx512 = f->os_avx && (x & 0xe0) == 0xe0;
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        unsigned max_sub = a;
        f->avx2 = bit(b, 5);
        f->avx512f = bit(b, 16);
        f->avx512dq = bit(b, 17);
        f->avx512bw = bit(b, 30);
        f->avx512vl = bit(b, 31);
        f->amx_tile = bit(d, 24);
        if (max_sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            f->avx512_bf16 = bit(a, 5);
        }
    }
}
