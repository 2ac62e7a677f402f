// Fused patch kernels: gather -> dihedral -> (jitter -> cast -> normalize), one launch per batch.
// One thread per output element, grid-stride loop; the per-element work is in the core header.
#include "gigapatch_core.cuh"

template <typename In>
__global__ void gp_gather_raw(const In* block, int bh, int bw, int c, const long long* ys,
                              const long long* xs, const int* ops, In* out, long long total,
                              int h, int w, int ry, int rx, In fill, int channel_first) {
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        gp_raw_element<In>(t, block, bh, bw, c, ys, xs, ops, out, h, w, ry, rx, fill,
                           channel_first);
    }
}

template <typename In, typename Out>
__global__ void gp_gather_norm(const In* block, int bh, int bw, int c, const long long* ys,
                               const long long* xs, const int* ops, const float* jitter,
                               int use_jitter, const float* divisor, const float* offset,
                               float lo, float hi, Out* out, long long total, int h, int w,
                               int ry, int rx, float fill, int channel_first) {
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        gp_norm_element<In, Out>(t, block, bh, bw, c, ys, xs, ops, jitter, use_jitter, divisor,
                                 offset, lo, hi, out, h, w, ry, rx, fill, channel_first);
    }
}
