// The Winograd kernel for AVX-512: 16-float vectors, 12 tiles x 32 channels = 24 accumulators.
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#define SRD_VL 16
#define SRD_MR 12
#define SRD_NS avx512
#include "wino_kernel.inc"
#endif
