// The Winograd kernel with bfloat16 products by AVX512-BF16 (VDPBF16PS), for CPUs that have it without AMX
// (AMD Zen 4 and later, Intel Cooper Lake): as wino_amx.cc but 12 tiles x 32 outputs in 24 zmm
// accumulators, each instruction adding two input channels' products. Same weight packing as the AMX one.
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx512bf16,avx2,fma")
#define SRD_VL 16
#define SRD_MR 12
#define SRD_NS avx512bf16
#define SRD_BF16 1
#include "wino_kernel.inc"
#endif
