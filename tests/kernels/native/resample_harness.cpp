// Host harness of the resampler core: each gp_resample_area instantiation of resample.cu as an
// extern "C" function with the kernel's exact parameter list, running every (patch, pixel)
// thread in turn. Built by tests/kernels/native_harness.py with g++ (and with ASan).
#include "resample_core.cuh"

#define GP_AREA(SUFFIX, T)                                                                    \
    extern "C" void gp_resample_area_##SUFFIX(const T* src, long long n, int hs, int ws,      \
                                              int c, T* out, int h, int w) {                  \
        for (long long k = 0; k < n; ++k)                                                     \
            for (int p = 0; p < h * w; ++p)                                                   \
                gp_area_pixel<T>(k, p, src, hs, ws, c, out, h, w);                            \
    }

GP_AREA(u8, unsigned char)
GP_AREA(u16, unsigned short)
GP_AREA(f32, float)

extern "C" void gp_round_div_n(const unsigned long long* num, unsigned long long den,
                               unsigned long long* out, long long n) {
    for (long long i = 0; i < n; ++i) out[i] = gp_round_div(num[i], den);
}
