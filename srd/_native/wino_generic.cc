// The Winograd kernel for the compiler's baseline ISA (SSE2 on x86-64, NEON on arm64): 4-float vectors.
#define SRD_VL 4
#define SRD_MR 2
#define SRD_NS generic
#include "wino_kernel.inc"
