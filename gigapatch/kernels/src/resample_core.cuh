// Per-thread work of the area resampler: one output pixel (all its channels) per call.
//
// Output pixel i of an axis of `dst` pixels covers source pixels [i·src/dst, (i+1)·src/dst)
// (src >= dst: downsampling only). Measured in units of 1/dst source pixel, every endpoint
// is an integer, so the overlap of a source pixel with an output pixel is an integer weight
// and the exact mean of an integer image is num / (hs·ws) with an integer num: the kernel
// rounds that quotient to nearest, ties to even (numpy.rint of the exact mean). Float
// images take the same weights, normalized, in float32.
//
// Everything here is __host__ __device__: NVRTC compiles it into resample.cu and g++ into
// the host harness of the tests (tests/kernels/native/resample_harness.cpp). No includes:
// NVRTC has no C++ standard library headers. The launcher guarantees (hs + 1)·h,
// (ws + 1)·w and hs·ws below 2**31, so the index arithmetic fits in int.
#ifndef GIGAPATCH_RESAMPLE_CORE_CUH
#define GIGAPATCH_RESAMPLE_CORE_CUH

#ifndef GP_HD
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GP_HD __host__ __device__ __forceinline__
#else
#define GP_HD inline
#endif
#endif

// Source pixels [*lo, *hi) that output pixel i touches.
GP_HD void gp_area_span(int i, int src, int dst, int* lo, int* hi) {
    *lo = i * src / dst;
    *hi = ((i + 1) * src + dst - 1) / dst;
}

// Overlap of source pixel j with output pixel i, in units of 1/dst source pixel.
GP_HD int gp_area_overlap(int i, int j, int src, int dst) {
    const int a = i * src > j * dst ? i * src : j * dst;
    const int b = (i + 1) * src < (j + 1) * dst ? (i + 1) * src : (j + 1) * dst;
    return b - a;
}

// num / den rounded to the nearest integer, ties to even.
GP_HD unsigned long long gp_round_div(unsigned long long num, unsigned long long den) {
    const unsigned long long q = num / den;
    const unsigned long long r = num - q * den;
    return q + ((2 * r > den || (2 * r == den && (q & 1ull))) ? 1ull : 0ull);
}

// One channel of one output pixel of an integer image: the exact area mean, rounded.
template <typename T>
GP_HD T gp_area_value(const T* patch, int hs, int ws, int c, int h, int w, int i, int j,
                      int y0, int y1, int x0, int x1) {
    unsigned long long num = 0;
    for (int y = y0; y < y1; ++y) {
        const T* line = patch + (long long)y * ws * c;
        unsigned long long row = 0;
        for (int x = x0; x < x1; ++x) {
            row += (unsigned long long)gp_area_overlap(j, x, ws, w) * line[(long long)x * c];
        }
        num += (unsigned long long)gp_area_overlap(i, y, hs, h) * row;
    }
    return (T)gp_round_div(num, (unsigned long long)hs * (unsigned long long)ws);
}

// The same for a float image: weights overlap / src per axis, float32 sums.
GP_HD float gp_area_value(const float* patch, int hs, int ws, int c, int h, int w, int i, int j,
                          int y0, int y1, int x0, int x1) {
    float acc = 0.0f;
    for (int y = y0; y < y1; ++y) {
        const float* line = patch + (long long)y * ws * c;
        float row = 0.0f;
        for (int x = x0; x < x1; ++x) {
            row += line[(long long)x * c] * ((float)gp_area_overlap(j, x, ws, w) / (float)ws);
        }
        acc += row * ((float)gp_area_overlap(i, y, hs, h) / (float)hs);
    }
    return acc;
}

// Output pixel p (= i·w + j) of patch k: all c channels of an (n, hs, ws, c) source into an
// (n, h, w, c) output, both C-contiguous.
template <typename T>
GP_HD void gp_area_pixel(long long k, int p, const T* src, int hs, int ws, int c, T* out, int h,
                         int w) {
    const int i = p / w;
    const int j = p - i * w;
    int y0, y1, x0, x1;
    gp_area_span(i, hs, h, &y0, &y1);
    gp_area_span(j, ws, w, &x0, &x1);
    const T* patch = src + k * hs * (long long)ws * c;
    T* dst = out + ((k * h + i) * (long long)w + j) * c;
    for (int ch = 0; ch < c; ++ch) {
        dst[ch] = gp_area_value(patch + ch, hs, ws, c, h, w, i, j, y0, y1, x0, x1);
    }
}

#endif  // GIGAPATCH_RESAMPLE_CORE_CUH
