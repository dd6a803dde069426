/* Local response normalisation in one pass each way on the CPU, for audit/models/lrn_native.py.
 *
 * A tensor is seen as [outer, groups * cg, inner], dense: channels_last maps are [N*H*W, C, 1],
 * contiguous ones [N, C, H*W]. For one outer index and one group the block is cg x inner floats,
 * and with P[c] = x[c]^2 (zero outside the group):
 *
 *     d[c] = k + scale * sum_{o=-lo..hi} P[c+o]          y[c] = x[c] * d[c]^-beta
 *     dx[c] = g[c] d[c]^-beta - 2 scale beta x[c] sum_{o=-hi..lo} (g x d^(-beta-1))[c+o]
 *
 * The window sums read a zero-padded copy of the block at n shifts of the flattened (channel,
 * inner) index, so the compiler vectorises them for either layout. The forward stores d (in fp32)
 * for the backward. fp32 and bf16 tensors; bf16 blocks are computed in fp32. The entry points at
 * the end spread the blocks over threads. No torch headers, so any C compiler builds it in about
 * a second.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* On x86-64 with GCC, one build carries AVX-512, AVX2 and baseline versions of the per-thread
 * workers and the loader picks the one this CPU runs (the sqrt and divide passes are 2x faster in AVX2). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CPU_CLONES
#endif

/* out[f] = d[f]^-beta, with cheap forms for the paper's 0.75 and for 0.5 (the branch outside the
 * loops, so they vectorise) */
static inline void neg_pow(const float *d, float *out, int64_t n, float beta) {
    if (beta == 0.75f) {
        for (int64_t f = 0; f < n; f++) {
            float r = 1.0f / sqrtf(d[f]);
            out[f] = r * sqrtf(r);
        }
    } else if (beta == 0.5f) {
        for (int64_t f = 0; f < n; f++) out[f] = 1.0f / sqrtf(d[f]);
    } else {
        for (int64_t f = 0; f < n; f++) out[f] = powf(d[f], -beta);
    }
}

/* sum_{o=0..span-1} padded[f + o*inner]; with a constant span the sum unrolls into one vector pass */
static inline __attribute__((always_inline)) float window_at(const float *padded, int64_t f, int64_t inner,
                                                             const int64_t span) {
    float sum = 0.0f;
    for (int64_t o = 0; o < span; o++) sum += padded[f + o * inner];
    return sum;
}

/* bf16 <-> fp32: bf16 is the top half of an fp32; round to nearest even, NaN stays NaN. */
static inline void bf16_to_float(const uint16_t *in, float *out, int64_t n) {
    for (int64_t f = 0; f < n; f++) {
        uint32_t u = (uint32_t)in[f] << 16;
        memcpy(out + f, &u, sizeof u);
    }
}

static inline void float_to_bf16(const float *in, uint16_t *out, int64_t n) {
    for (int64_t f = 0; f < n; f++) {
        uint32_t u;
        memcpy(&u, in + f, sizeof u);
        uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
        out[f] = (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16) | 0x40u : rounded);
    }
}

/* Work space of one thread: the zero-padded block for the window sums, then `blocks` block-sized
 * arrays. The pads are zeroed here once; the blocks' middles are rewritten for every block. */
typedef struct {
    float *padded, *mid, *block[4];
} Scratch;

static int scratch_init(Scratch *s, int64_t cg, int64_t inner, int64_t pad_before, int64_t pad_after, int blocks) {
    const int64_t n = cg * inner, padded = (cg + pad_before + pad_after) * inner;
    s->padded = (float *)calloc((size_t)(padded + blocks * n), sizeof(float));
    if (!s->padded) return 1;
    s->mid = s->padded + pad_before * inner;
    for (int i = 0; i < blocks; i++) s->block[i] = s->padded + padded + i * n;
    return 0;
}

/* Run a loop that uses window_at(..., SPAN) with SPAN a constant for the paper's sizes 5
 * (ImageNet) and 9 (CIFAR-10), so the window unrolls and the loop vectorises; any size works. */
#define FOR_SPAN(span, ...)                        \
    switch (span) {                                \
        case 5: { const int64_t SPAN = 5; __VA_ARGS__ } break; \
        case 9: { const int64_t SPAN = 9; __VA_ARGS__ } break; \
        default: { const int64_t SPAN = span; __VA_ARGS__ }    \
    }

/* One block (one outer index, one group), fp32: y and d from x. */
static inline void forward_block(const float *x, float *y, float *d, const Scratch *s, int64_t n, int64_t inner,
                                 int64_t span, float k, float scale, float beta) {
    float *dpow = s->block[0];
    for (int64_t f = 0; f < n; f++) s->mid[f] = x[f] * x[f];
    FOR_SPAN(span, for (int64_t f = 0; f < n; f++) d[f] = k + scale * window_at(s->padded, f, inner, SPAN);)
    neg_pow(d, dpow, n, beta);
    for (int64_t f = 0; f < n; f++) y[f] = x[f] * dpow[f];
}

/* One block, fp32: dx from g, x and d (the scratch is padded for the transposed window). */
static inline void backward_block(const float *g, const float *x, const float *d, float *dx, const Scratch *s,
                                  int64_t n, int64_t inner, int64_t span, float coef, float beta) {
    float *t = s->block[0];
    neg_pow(d, t, n, beta);
    for (int64_t f = 0; f < n; f++) {
        t[f] *= g[f];                   /* g d^-beta */
        s->mid[f] = t[f] * x[f] / d[f]; /* g x d^(-beta-1) */
    }
    FOR_SPAN(span, for (int64_t f = 0; f < n; f++) dx[f] = t[f] + coef * x[f] * window_at(s->padded, f, inner, SPAN);)
}

/* The work of one thread: blocks [b0, b1). Returns 0, or 1 when the scratch malloc fails. */

static CPU_CLONES int forward_f32(const float *x, float *y, float *d, int64_t b0, int64_t b1, int64_t cg,
                                  int64_t inner, int64_t lo, int64_t hi, float k, float scale, float beta) {
    const int64_t n = cg * inner;
    Scratch s;
    if (scratch_init(&s, cg, inner, lo, hi, 1)) return 1;
    for (int64_t b = b0; b < b1; b++)
        forward_block(x + b * n, y + b * n, d + b * n, &s, n, inner, lo + hi + 1, k, scale, beta);
    free(s.padded);
    return 0;
}

static CPU_CLONES int backward_f32(const float *g, const float *x, const float *d, float *dx, int64_t b0, int64_t b1,
                                   int64_t cg, int64_t inner, int64_t lo, int64_t hi, float scale, float beta) {
    const int64_t n = cg * inner;
    Scratch s;
    if (scratch_init(&s, cg, inner, hi, lo, 1)) return 1; /* transposed window: hi before, lo after */
    for (int64_t b = b0; b < b1; b++)
        backward_block(g + b * n, x + b * n, d + b * n, dx + b * n, &s, n, inner, lo + hi + 1,
                       -2.0f * scale * beta, beta);
    free(s.padded);
    return 0;
}

/* bf16 tensors (d stays fp32): each block is widened to fp32, computed as above, and rounded back. */

static CPU_CLONES int forward_bf16(const uint16_t *x, uint16_t *y, float *d, int64_t b0, int64_t b1, int64_t cg,
                                   int64_t inner, int64_t lo, int64_t hi, float k, float scale, float beta) {
    const int64_t n = cg * inner;
    Scratch s;
    if (scratch_init(&s, cg, inner, lo, hi, 3)) return 1;
    for (int64_t b = b0; b < b1; b++) {
        bf16_to_float(x + b * n, s.block[1], n);
        forward_block(s.block[1], s.block[2], d + b * n, &s, n, inner, lo + hi + 1, k, scale, beta);
        float_to_bf16(s.block[2], y + b * n, n);
    }
    free(s.padded);
    return 0;
}

static CPU_CLONES int backward_bf16(const uint16_t *g, const uint16_t *x, const float *d, uint16_t *dx, int64_t b0,
                                    int64_t b1, int64_t cg, int64_t inner, int64_t lo, int64_t hi, float scale,
                                    float beta) {
    const int64_t n = cg * inner;
    Scratch s;
    if (scratch_init(&s, cg, inner, hi, lo, 4)) return 1;
    for (int64_t b = b0; b < b1; b++) {
        bf16_to_float(g + b * n, s.block[1], n);
        bf16_to_float(x + b * n, s.block[2], n);
        backward_block(s.block[1], s.block[2], d + b * n, s.block[3], &s, n, inner, lo + hi + 1,
                       -2.0f * scale * beta, beta);
        float_to_bf16(s.block[3], dx + b * n, n);
    }
    free(s.padded);
    return 0;
}

/* Entry points. Arguments: the tensors' data, the outer range [begin, end), groups, cg, inner, lo,
 * hi, k (forward only), scale, beta, threads. Built with OpenMP, one call spreads the blocks over
 * `threads` threads of the OpenMP runtime (torch's own, when it is already loaded: same soname);
 * without, it runs on the calling thread and the caller splits [begin, end) between its threads.
 * They return 0, or 1 when a scratch malloc failed. */

int lrn_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Blocks [first, last) split evenly over the threads of the enclosing parallel region. */
static void thread_share(int64_t first, int64_t last, int64_t *b0, int64_t *b1) {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int64_t t = 0, nt = 1;
#endif
    *b0 = first + (last - first) * t / nt;
    *b1 = first + (last - first) * (t + 1) / nt;
}

#define OVER_THREADS(CALL)                                                  \
    int failed = 0;                                                         \
    _Pragma("omp parallel num_threads(threads) reduction(| : failed)")     \
    {                                                                       \
        int64_t b0, b1;                                                     \
        thread_share(begin * groups, end * groups, &b0, &b1);              \
        failed |= CALL;                                                     \
    }                                                                       \
    (void)threads;                                                          \
    return failed;

int lrn_forward(const float *x, float *y, float *d, int64_t begin, int64_t end, int64_t groups, int64_t cg,
                int64_t inner, int64_t lo, int64_t hi, float k, float scale, float beta, int64_t threads) {
    OVER_THREADS(forward_f32(x, y, d, b0, b1, cg, inner, lo, hi, k, scale, beta))
}

int lrn_backward(const float *g, const float *x, const float *d, float *dx, int64_t begin, int64_t end,
                 int64_t groups, int64_t cg, int64_t inner, int64_t lo, int64_t hi, float scale, float beta,
                 int64_t threads) {
    OVER_THREADS(backward_f32(g, x, d, dx, b0, b1, cg, inner, lo, hi, scale, beta))
}

int lrn_forward_bf16(const uint16_t *x, uint16_t *y, float *d, int64_t begin, int64_t end, int64_t groups,
                     int64_t cg, int64_t inner, int64_t lo, int64_t hi, float k, float scale, float beta,
                     int64_t threads) {
    OVER_THREADS(forward_bf16(x, y, d, b0, b1, cg, inner, lo, hi, k, scale, beta))
}

int lrn_backward_bf16(const uint16_t *g, const uint16_t *x, const float *d, uint16_t *dx, int64_t begin,
                      int64_t end, int64_t groups, int64_t cg, int64_t inner, int64_t lo, int64_t hi, float scale,
                      float beta, int64_t threads) {
    OVER_THREADS(backward_bf16(g, x, d, dx, b0, b1, cg, inner, lo, hi, scale, beta))
}
