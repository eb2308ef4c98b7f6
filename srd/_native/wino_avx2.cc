// The Winograd kernel for AVX2 + FMA: 8-float vectors, 3 tiles x 32 channels = 12 accumulators.
#if defined(__x86_64__)
#pragma GCC target("avx2,fma")
#define SRD_VL 8
#define SRD_MR 3
#define SRD_NS avx2
#define SRD_AVX2 1
#include "wino_kernel.inc"
#endif
