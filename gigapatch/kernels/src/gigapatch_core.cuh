// Per-thread work of the fused patch kernels: one output pixel (all its channels) per call.
//
// Everything here is __host__ __device__: NVRTC compiles it into the CuPy
// kernels (patches.cu) and g++ compiles it into the host harness of the
// tests (tests/native/core_harness.cpp), which runs this exact index
// arithmetic on the CPU and compares it with NumPy. No includes: NVRTC has
// no C++ standard library headers.
#ifndef GIGAPATCH_CORE_CUH
#define GIGAPATCH_CORE_CUH

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GP_HD __host__ __device__ __forceinline__
#else
#define GP_HD inline
#endif

// IEEE binary16 stored as its bits; the output type of float16 kernels.
struct gp_half {
    unsigned short bits;
};

// float32 multiply, divide and add, each correctly rounded (never fused into an FMA nor
// approximated), as NumPy does.
GP_HD float gp_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

GP_HD float gp_div(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}

GP_HD float gp_add(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

// float32 -> binary16 bits, round to nearest even (what NumPy's astype does).
GP_HD unsigned short gp_half_bits(float f) {
    union {
        float f;
        unsigned int u;
    } pun;
    pun.f = f;
    const unsigned int sign = (pun.u >> 16) & 0x8000u;
    const unsigned int a = pun.u & 0x7fffffffu;
    if (a > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);  // NaN
    if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // >= 65520: infinity
    if (a < 0x38800000u) {  // below 2^-14: a subnormal half (or zero)
        const int shift = 126 - (int)(a >> 23);
        if (shift > 24) return (unsigned short)sign;
        const unsigned int m = (a & 0x7fffffu) | 0x800000u;
        unsigned int r = m >> shift;
        const unsigned int rem = m & ((1u << shift) - 1u);
        const unsigned int halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (r & 1u))) r += 1u;
        return (unsigned short)(sign | r);
    }
    const unsigned int r = a - 0x38000000u;  // rebias the exponent from 127 to 15
    unsigned int h = r >> 13;
    const unsigned int rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h += 1u;
    return (unsigned short)(sign | h);
}

GP_HD void gp_store(float* p, float v) { *p = v; }
GP_HD void gp_store(gp_half* p, float v) { p->bits = gp_half_bits(v); }

// Dihedral code op (0..7): rotate by op % 4 quarter turns counter-clockwise, then flip
// left-right when op >= 4. Output pixel (i, j) comes from patch pixel (si, sj).
GP_HD void gp_dihedral(int op, int h, int w, int i, int j, int* si, int* sj) {
    if (op & 4) j = w - 1 - j;
    switch (op & 3) {
        case 0: *si = i;         *sj = j;         break;
        case 1: *si = j;         *sj = w - 1 - i; break;
        case 2: *si = h - 1 - i; *sj = w - 1 - j; break;
        default: *si = h - 1 - j; *sj = i;        break;
    }
}

// Where output pixel p (= i * w + j) of patch k reads: the block offset of its channel 0,
// or -1 outside the block. Only 32-bit division here (p < h * w): 64-bit division is slow
// on GPUs.
GP_HD long long gp_source(long long k, int p, int bh, int bw, int c, const long long* ys,
                          const long long* xs, const int* ops, int h, int w, int ry, int rx,
                          int* i, int* j) {
    *i = p / w;
    *j = p - *i * w;
    int si, sj;
    gp_dihedral(ops[k], h, w, *i, *j, &si, &sj);
    const long long yy = ys[k] + (long long)si * ry;
    const long long xx = xs[k] + (long long)sj * rx;
    if (yy < 0 || yy >= bh || xx < 0 || xx >= bw) return -1;
    return (yy * bw + xx) * c;
}

// Index of element (k, i, j, ch) in an (n, h, w, c) or (n, c, h, w) output.
GP_HD long long gp_out_index(long long k, int i, int j, int ch, int h, int w, int c,
                             int channel_first) {
    return channel_first ? ((k * c + ch) * h + i) * (long long)w + j
                         : ((k * h + i) * (long long)w + j) * c + ch;
}

// Raw pixel: gather + dihedral, source dtype kept, `fill` outside the block; all channels.
template <typename In>
GP_HD void gp_raw_pixel(long long k, int p, const In* block, int bh, int bw, int c,
                        const long long* ys, const long long* xs, const int* ops, In* out,
                        int h, int w, int ry, int rx, In fill, int channel_first) {
    int i, j;
    const long long src = gp_source(k, p, bh, bw, c, ys, xs, ops, h, w, ry, rx, &i, &j);
    for (int ch = 0; ch < c; ++ch) {
        out[gp_out_index(k, i, j, ch, h, w, c, channel_first)] = src < 0 ? fill : block[src + ch];
    }
}

// Normalized pixel: gather + dihedral + jitter + x / divisor + offset, stored as Out.
template <typename In, typename Out>
GP_HD void gp_norm_pixel(long long k, int p, const In* block, int bh, int bw, int c,
                         const long long* ys, const long long* xs, const int* ops,
                         const float* jitter, int use_jitter, const float* divisor,
                         const float* offset, float lo, float hi, Out* out, int h, int w,
                         int ry, int rx, float fill, int channel_first) {
    int i, j;
    const long long src = gp_source(k, p, bh, bw, c, ys, xs, ops, h, w, ry, rx, &i, &j);
    for (int ch = 0; ch < c; ++ch) {
        float x = src < 0 ? fill : (float)block[src + ch];
        if (use_jitter) {
            x = gp_add(gp_mul(x, jitter[2 * k]), jitter[2 * k + 1]);
            x = x < lo ? lo : (x > hi ? hi : x);
        }
        gp_store(out + gp_out_index(k, i, j, ch, h, w, c, channel_first),
                 gp_add(gp_div(x, divisor[ch]), offset[ch]));
    }
}

#endif  // GIGAPATCH_CORE_CUH
