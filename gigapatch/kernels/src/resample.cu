// Area resampler: (n, hs, ws, c) patches -> (n, h, w, c), h <= hs, w <= ws, one launch per batch.
// One thread per output pixel: grid x strides over the h * w pixels of a patch, grid y over the
// n patches. The per-pixel work is in the core header.
#include "resample_core.cuh"

template <typename T>
__global__ void gp_resample_area(const T* src, long long n, int hs, int ws, int c, T* out, int h,
                                 int w) {
    const int pixels = h * w;
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long k = blockIdx.y; k < n; k += gridDim.y) {
        for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pixels;
             p += stride) {
            gp_area_pixel<T>(k, (int)p, src, hs, ws, c, out, h, w);
        }
    }
}
