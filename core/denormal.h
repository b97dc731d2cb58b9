/* denormal.h - flush denormal floats to zero while training, as TensorFlow
 * does in every op it runs. Adam's moments of a weight whose gradient stays
 * zero (a pixel that is never inked) decay by 0.9 and 0.999 per step into
 * the denormal range, where each multiply costs about a hundred cycles: the
 * optimizer then took most of an MLP's epoch. The mode is a property of the
 * calling thread (MXCSR), saved and restored around the work. */
#ifndef MN_DENORMAL_H
#define MN_DENORMAL_H

#if defined(__SSE2__)
#include <xmmintrin.h>

/* FTZ (results) and DAZ (inputs) are MXCSR bits 15 and 6. */
#define MN_MXCSR_FLUSH 0x8040u

static inline unsigned denormals_flush_begin(void)
{
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | MN_MXCSR_FLUSH);
    return saved;
}

static inline void denormals_flush_end(unsigned saved)
{
    _mm_setcsr(saved);
}
#else
static inline unsigned denormals_flush_begin(void) { return 0; }
static inline void denormals_flush_end(unsigned saved) { (void)saved; }
#endif

#endif
