// Fused patch kernels: gather -> dihedral -> (jitter -> cast -> normalize), one launch per batch.
// One thread per output pixel: grid x strides over the h * w pixels of a patch, grid y over the
// n patches. The per-pixel work is in the core header.
#include "gigapatch_core.cuh"

template <typename In>
__global__ void gp_gather_raw(const In* block, int bh, int bw, int c, const long long* ys,
                              const long long* xs, const int* ops, In* out, long long n,
                              int h, int w, int ry, int rx, In fill, int channel_first) {
    const int pixels = h * w;
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long k = blockIdx.y; k < n; k += gridDim.y) {
        for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pixels;
             p += stride) {
            gp_raw_pixel<In>(k, (int)p, block, bh, bw, c, ys, xs, ops, out, h, w, ry, rx, fill,
                             channel_first);
        }
    }
}

template <typename In, typename Out>
__global__ void gp_gather_norm(const In* block, int bh, int bw, int c, const long long* ys,
                               const long long* xs, const int* ops, const float* jitter,
                               int use_jitter, const float* divisor, const float* offset,
                               float lo, float hi, Out* out, long long n, int h, int w,
                               int ry, int rx, float fill, int channel_first) {
    const int pixels = h * w;
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long k = blockIdx.y; k < n; k += gridDim.y) {
        for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pixels;
             p += stride) {
            gp_norm_pixel<In, Out>(k, (int)p, block, bh, bw, c, ys, xs, ops, jitter, use_jitter,
                                   divisor, offset, lo, hi, out, h, w, ry, rx, fill,
                                   channel_first);
        }
    }
}
