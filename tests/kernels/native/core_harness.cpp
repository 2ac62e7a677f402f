// Host harness of the kernel core: each gp_gather_* kernel of patches.cu as an extern "C"
// function with the kernel's exact parameter list, running every (patch, pixel) thread in turn.
// Built by tests/kernels/native_harness.py with g++ (and once with -fsanitize=address).
#include "gigapatch_core.cuh"

#define GP_RAW(SUFFIX, IN)                                                                    \
    extern "C" void gp_gather_raw_##SUFFIX(                                                   \
        const IN* block, int bh, int bw, int c, const long long* ys, const long long* xs,     \
        const int* ops, IN* out, long long n, int h, int w, int ry, int rx, IN fill,          \
        int channel_first) {                                                                  \
        for (long long k = 0; k < n; ++k)                                                     \
            for (int p = 0; p < h * w; ++p)                                                   \
                gp_raw_pixel<IN>(k, p, block, bh, bw, c, ys, xs, ops, out, h, w, ry, rx,      \
                                 fill, channel_first);                                        \
    }

#define GP_NORM(SUFFIX, IN, OUT)                                                              \
    extern "C" void gp_gather_norm_##SUFFIX(                                                  \
        const IN* block, int bh, int bw, int c, const long long* ys, const long long* xs,     \
        const int* ops, const float* jitter, int use_jitter, const float* divisor,            \
        const float* offset, float lo, float hi, OUT* out, long long n, int h, int w,         \
        int ry, int rx, float fill, int channel_first) {                                      \
        for (long long k = 0; k < n; ++k)                                                     \
            for (int p = 0; p < h * w; ++p)                                                   \
                gp_norm_pixel<IN, OUT>(k, p, block, bh, bw, c, ys, xs, ops, jitter,           \
                                       use_jitter, divisor, offset, lo, hi, out, h, w, ry,    \
                                       rx, fill, channel_first);                              \
    }

GP_RAW(u8, unsigned char)
GP_RAW(u16, unsigned short)
GP_RAW(f32, float)
GP_NORM(u8_f32, unsigned char, float)
GP_NORM(u8_f16, unsigned char, gp_half)
GP_NORM(u16_f32, unsigned short, float)
GP_NORM(u16_f16, unsigned short, gp_half)
GP_NORM(f32_f32, float, float)
GP_NORM(f32_f16, float, gp_half)

extern "C" void gp_half_bits_n(const float* in, unsigned short* out, long long n) {
    for (long long i = 0; i < n; ++i) out[i] = gp_half_bits(in[i]);
}
