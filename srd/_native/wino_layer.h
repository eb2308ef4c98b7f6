// One Winograd F(6x6, 3x3) convolution layer: shapes, pointers and the per-ISA block functions.
#pragma once

#include <cstdint>

namespace srd_wino {

// Output channels per packed weight panel (U is [64][cout_padded / nr][cin_padded][nr]): kNR, or kNarrowNR
// for layers with at most 16 outputs (an image's 3, or 12 sub-pixel phases of it), which would otherwise
// compute twice to ten times the products they keep.
constexpr int kNR = 32;
constexpr int kNarrowNR = 16;

// Floats between consecutive transformed positions (planes) of a block's V or M: one cache line more than
// the data, so that the 64 planes, often a multiple of 4 KiB apart otherwise, do not all fall into the
// same L1 cache set when a tile's 64 values are stored or loaded.
inline long plane_size(int rows, int channels) { return static_cast<long>(rows) * channels + 16; }

// Scratch floats one block of `rows` tiles needs: V and M (M for `group` output channels at a time).
inline long scratch_size(int rows, int cin, int group) { return 64 * (plane_size(rows, cin) + plane_size(rows, group)); }

// kPReLU: leaky ReLU with one slope per output channel (Layer::slopes; Real-ESRGAN's compact SRVGG nets).
enum Activation { kNone = 0, kReLU = 1, kLeakyReLU = 2, kPReLU = 3 };

constexpr int kMaxParts = 8;  // input blobs one layer reads as if concatenated along channels

// Activations (inputs, addends, outputs) are float32 or bfloat16 (`*16` flags: uint16_t, the upper half of
// a float32, written rounded to nearest even): "native-bf16" keeps the big layers' activations in
// bfloat16, which halves the memory traffic of layers that are memory-bound (wino_kernel.inc's loads).
struct Layer {
  // The input: `parts` NHWC blobs of N x h x w x xc[i], read as their concatenation along channels (an
  // RRDB's growing dense-block inputs, never materialised); every part but the last has a multiple of 16
  // channels, so no vector of channels straddles two. cin is their sum. x16[i]: part i is bfloat16.
  const void* xs[kMaxParts];
  bool x16[kMaxParts];
  int xc[kMaxParts];
  int parts;
  // Or, with one part, an addend: the input is x + addend[at (add_top, add_left) on], the addend an
  // N x add_h x add_w x cin blob (a U-Net's skip connection, cropped in place), the sum never made.
  const void* addend;
  bool add16;
  int add_h, add_w, add_top, add_left;
  // Each image's valid rows and columns of the input (N x 2), or null: pixels past them read as zeros, as
  // a smaller edge tile run alone is zero-padded right past its real pixels (srd.nn.extents).
  const int32_t* valid;
  const float* u;  // packed transformed weights (float32 kernels)
  const uint16_t* u16;  // or, for the bfloat16 kernels, packed as bfloat16 pairs (see wino_amx.cc)
  const float* w_direct;  // or, for the direct kernel (at most 4 outputs), the taps as [9][cout][cin]
  const float* bias;  // cout, or null
  const float* slopes;  // cout PReLU slopes (act kPReLU), else null
  void* y;  // N x oh x ow x cout
  bool y16;  // y is bfloat16
  int n, h, w, cin, cout;
  int cin_padded, cout_padded;  // as packed in u: cin to a multiple of 16, cout of nr (zero weights)
  int nr;  // u's panel width: kNR or kNarrowNR (float32 kernels; the bfloat16 ones take kNR)
  int group;  // output channels multiplied and transformed out per pass over a block: cout_padded, or a
              // multiple of 32 below it (M holds one group), set by run_layer
  int oh, ow, th, tw;  // output size and 6x6 tiles per image
  int pad_top, pad_left;
  int act;
  float slope;
  bool stream;  // write y with non-temporal stores (a big output, past the caches anyway; see run_layer)
  long tiles() const { return static_cast<long>(n) * th * tw; }
};

// A 2x2 stride-2 convolution (kDown: each output pixel from a 2x2 input patch, K = 4 cin) or transposed
// convolution (kUp: each input pixel to a 2x2 output patch, two matmuls of cin x 2 cout, one per output
// row), both plain matmuls over NHWC rows read and written in place: no space-to-depth or depth-to-space
// copy, bias and activation fused (srd_patch_matmul; cunet's and Real-CUGAN's down- and up-sampling).
enum PatchMode { kDown = 0, kUp = 1 };
constexpr int kPatchNR = 32;  // output columns per packed panel of b

struct PatchLayer {
  const void* x;  // N x h x w x cin
  bool x16;  // x is bfloat16
  const float* b;  // packed: kDown [cols / 32][4 cin][32]; kUp [2][cols / 32][cin][32] (output row dy)
  const uint16_t* b16;  // or, for the bfloat16 builds, as bfloat16 pairs: [phases][cols / 16][K / 2][32]
  const float* bias;  // cols (kUp: the bias twice, one per output column phase), or null
  void* y;  // kDown N x h/2 x w/2 x cout; kUp N x 2h x 2w x cout
  bool y16;  // y is bfloat16
  int n, h, w, cin, cout;
  int mode;
  int cols;  // a matmul's output columns: cout (kDown) or 2 cout (kUp); a multiple of kPatchNR
  int act;
  float slope;
  bool stream;  // non-temporal stores for y (a big output)
  // Work items: one matmul each (an output row for kDown; an input row and output row phase for kUp).
  long items() const { return mode == kDown ? static_cast<long>(n) * (h / 2) : 2L * n * h; }
};

// The direct 3x3 kernel (direct_kernel.inc) takes at most this many outputs, cin a multiple of 16.
constexpr int kDirectMaxOut = 4;
// Output rows per work item of the direct kernel: each thread reads 18 input rows for 16 output rows (one
// row per item read each input row up to three times, from either core: 33 -> 28 ms on cunet's last layer).
constexpr int kDirectBand = 16;

// Each ISA namespace provides run_block (transform in, multiply, transform out for one block of tiles;
// scratch holds 64 * roundup(nb, MR) * (cin + cout_padded) floats), block_rows (its MR) and
// run_patch_item (one matmul of a PatchLayer) and run_direct_item (one band of output rows of a layer with
// at most kDirectMaxOut outputs, from L.w_direct; direct_kernel.inc).
#define SRD_WINO_DECLARE(ns)                                          \
  namespace ns {                                                      \
  void run_block(const Layer& L, long block, int nb, float* scratch); \
  int block_rows();                                                   \
  void run_patch_item(const PatchLayer& P, long item);                \
  void run_direct_item(const Layer& L, long item);                    \
  }
SRD_WINO_DECLARE(amx)
SRD_WINO_DECLARE(avx512bf16)
SRD_WINO_DECLARE(avx512)
SRD_WINO_DECLARE(avx2)
SRD_WINO_DECLARE(generic)

}  // namespace srd_wino
