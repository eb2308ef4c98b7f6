// The Winograd kernel with bfloat16 products on the AMX tile unit (Intel Sapphire Rapids and later):
// transforms in float32 with AVX-512 as in wino_avx512.cc, V rounded to bfloat16, the 64 matmuls as
// TDPBF16PS on 16 x 16 float32 accumulator tiles, 32 tiles x 32 output channels at a time.
// Weights come packed as bfloat16 pairs: [64][cout_padded / 16][cin_padded / 2][16][2], cin_padded a
// multiple of 32 (srd/model/native.py pack_kernel_bf16). Only run when asked for ("native-bf16").
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx512bf16,avx2,fma,amx-tile,amx-bf16")
#define SRD_VL 16
#define SRD_MR 32
#define SRD_NS amx
#define SRD_BF16 1
#define SRD_AMX 1
#include "wino_kernel.inc"
#endif
