// XLA FFI custom calls "srd_winograd_f63": a stride-1 3x3 convolution (+ bias + activation) run as
// Winograd F(6x6, 3x3) on the CPU, spread over XLA's intra-op thread pool, of one input or of several
// read as their channel concatenation, zero past each image's valid extent if given (operands: valid,
// u, bias, then the input parts); "srd_winograd_f63_bf16": the same with bfloat16 weights and products
// (AMX tiles, or AVX512-BF16 where there is no AMX); "srd_conv3x3_direct": a 3x3 layer with at most 4
// outputs, direct (direct_kernel.inc); "srd_patch_matmul" and "srd_patch_matmul_bf16":
// 2x2 stride-2 convolutions and transposed convolutions (patch_kernel.inc). Also the CPython module
// `srd._winograd`, which hands the handlers to JAX (jax.ffi.register_ffi_target) and reports the ISA.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "wino_layer.h"
#include "xla/ffi/api/ffi.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ffi = xla::ffi;

namespace srd_wino {
namespace {

enum Isa : int64_t { kAuto = 0, kGeneric = 1, kAvx2 = 2, kAvx512 = 3, kAmx = 4, kAvx512Bf16 = 5 };

bool is_bf16_isa(int64_t isa) { return isa == kAmx || isa == kAvx512Bf16; }  // takes bfloat16 weights

#if defined(__x86_64__)
// AVX512-BF16 in CPUID (leaf 7, sub-leaf 1, EAX bit 5).
bool has_avx512_bf16() {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1);
}

// AMX-TILE + AMX-BF16 in CPUID, and Linux's permission to use the tile data state, which a process must
// ask for once (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+) before its first tile load.
bool amx_usable() {
  static const bool usable = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool tile = (d >> 24) & 1, bf16_tiles = (d >> 22) & 1;
    if (!(tile && bf16_tiles && has_avx512_bf16())) return false;
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return usable;
}
#endif

bool isa_supported(int64_t isa) {
  switch (isa) {
    case kGeneric:
      return true;
#if defined(__x86_64__)
    case kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    case kAmx:
      return isa_supported(kAvx512) && amx_usable();
    case kAvx512Bf16:
      return isa_supported(kAvx512) && has_avx512_bf16();
#endif
    default:
      return false;
  }
}

int64_t best_isa() {
  for (int64_t isa : {kAvx512, kAvx2})
    if (isa_supported(isa)) return isa;
  return kGeneric;
}

// The function `entry` of the ISA namespace compiled for `isa` (wino_<isa>.cc; generic for anything else).
#if defined(__x86_64__)
#define SRD_ISA_ENTRY(isa, entry)                                                                    \
  ((isa) == kAmx ? amx::entry                                                                        \
   : (isa) == kAvx512Bf16 ? avx512bf16::entry                                                         \
   : (isa) == kAvx512     ? avx512::entry                                                             \
   : (isa) == kAvx2       ? avx2::entry                                                               \
                          : generic::entry)
#else
#define SRD_ISA_ENTRY(isa, entry) (generic::entry)
#endif

using BlockFn = void (*)(const Layer&, long, int, float*);

struct Kernel {
  BlockFn run;
  int mr;
};

Kernel kernel_for(int64_t isa) { return {SRD_ISA_ENTRY(isa, run_block), SRD_ISA_ENTRY(isa, block_rows)()}; }

long l2_bytes() {  // this CPU's L2 cache per core, or 0 where sysconf does not say
  static const long l2 = std::max(sysconf(_SC_LEVEL2_CACHE_SIZE), 0L);
  return l2;
}

// Tiles per block: as many as keep V and M (64 floats per tile per input and output channel) within
// the budget below (block_budget), so that a block's intermediates stay in L2; at least one register
// block. The AMX kernel multiplies so fast that streaming the weights (U, all 64 positions) from L3 once
// per block shows: there a block is also at least one tile per 32 KiB of U (measured on 128->256
// channels: 128 tiles, 25% faster than the L2 rule's 32).
// The budget is half the L2 cache this process runs on (sysconf), at most 1 MiB and at least 256 KiB:
// 1 MiB on a 2 MiB-L2 Intel Xeon, where blocks of 12 to 24 tiles of a 64->64 layer (384-768 KiB) ran
// alike and 36 or more (past L2 with U's 1 MiB) 10-35% slower; 512 KiB on a 1 MiB-L2 AMD Zen 5.
// SRD_WINOGRAD_BLOCK_BYTES sets it instead; bench/winograd_micro.py --blocks times given block sizes.
// (Zen 5's 512 KiB is the rule's, not yet measured there; on the Xeon 256 KiB-1 MiB ran cunet alike.)
long block_budget() {
  static const long budget = [] {
    if (const char* set = std::getenv("SRD_WINOGRAD_BLOCK_BYTES")) {
      const long value = std::atol(set);
      if (value > 0) return value;
    }
    if (l2_bytes() <= 0) return 1L << 20;
    return std::clamp(l2_bytes() / 2, 256L << 10, 1L << 20);
  }();
  return budget;
}

// Tiles per block and output channels per pass for a layer (run_layer's plan, unless the call sets a block).
// A float32 layer whose U does not stay in L2 beside a block reads U from L3 once per block, so there a
// block should hold more tiles than the L2 rule gives; two ways, chosen by a model of the L3 traffic per
// tile (U / tiles, plus kSpillCost times V and M where they outgrow L2 and go out and back), fitted to the
// Xeon's sweeps of 64->64 .. 256->256 layers at 260 and 516 px (bench/winograd_micro.py --blocks):
// - wide: kWideBlock tiles past L2, V and M spilled: 128->256 at 516 px 158 -> 125 ms, 256->256 at 260 px
//   90 -> 61 ms (U 8-16 MB);
// - grouped: M for kGroup output channels at a time (Layer::group), so the L2 budget holds twice to three
//   times the tiles: 64->128 at 516 px 38.9 -> 34.5 ms, 128->128 78 -> 72 ms (U 2-4 MB), where wide blocks
//   ran alike or slower. (Grouping the wide layers instead measured 5-15% slower than wide.)
// bfloat16 layers keep the AMX-measured rule (block_budget's comment).
constexpr long kWideBlock = 96;
constexpr long kSpillCost = 5;
constexpr int kGroup = 32;

// SRD_WINOGRAD_PLAN=l2 keeps every layer's blocks L2-sized, whole (the rule before wide and grouped
// blocks), for measuring what the traffic model gains on a machine (bench/cpu_round.sh); read once.
bool traffic_plan() {
  static const bool on = [] {
    const char* set = std::getenv("SRD_WINOGRAD_PLAN");
    return set == nullptr || std::strcmp(set, "l2") != 0;
  }();
  return on;
}

struct BlockPlan {
  int tiles;  // tiles per block
  int group;  // output channels per pass (Layer::group)
};

BlockPlan plan_blocks(const Layer& L, int mr, bool bf16, int threads) {  // bf16: V in bfloat16, U in L.u16
  const long v_bytes = bf16 ? 2 : 4;
  const long v_tile = 64L * L.cin_padded * v_bytes;
  const long per_tile = v_tile + 64L * L.cout_padded * 4;
  const auto fit = [&](long bytes_per_tile, long at_least) {
    const long want = std::max(block_budget() / bytes_per_tile, at_least);
    return std::min<long>(std::max<long>(mr, want / mr * mr), (bf16 ? 8L : 16L) * mr);
  };
  long nb = fit(per_tile, bf16 ? 64L * L.cin_padded * L.cout_padded * 2 / (32L << 10) : 0);
  int group = L.cout_padded;
  const long u_bytes = 64L * L.cin_padded * L.cout_padded * 4;
  const long l2 = std::max(l2_bytes(), 2 * block_budget());
  if (!bf16 && traffic_plan() && u_bytes + nb * per_tile > l2) {  // U streams from L3 once per block
    const long wide = (kWideBlock + mr - 1) / mr * mr;
    const long grouped = fit(v_tile + 64L * kGroup * 4, 0);
    if (wide > nb && u_bytes / nb > u_bytes / wide + kSpillCost * per_tile) {
      nb = wide;
    } else if (L.nr == kNR && L.cout_padded > kGroup && grouped > nb) {
      nb = grouped;
      group = kGroup;
    }
  }
  // Enough blocks for every thread (four each, so that the last ones even out): a small image's layer
  // in one big block would run on one core.
  const long spread = L.tiles() / (4L * std::max(threads, 1)) / mr * mr;
  return {static_cast<int>(std::max<long>(mr, std::min(nb, spread))), group};
}

// Runs item(0) .. item(items - 1) on the calling thread and on pool workers: items are claimed from a
// shared counter; the caller works too, so the call finishes even when no pool thread is free, and waits
// only for items already claimed. A worker that starts after the last item was claimed finds none left;
// the shared state (and the item function with what it captured) lives until every worker is done.
struct ForkJoin {
  std::function<void(long)> item;
  long items = 0;
  std::atomic<long> next{0};
  std::atomic<long> done{0};
  std::mutex mu;
  std::condition_variable cv;

  void work() {
    for (long i; (i = next.fetch_add(1)) < items;) {
      item(i);
      if (done.fetch_add(1) + 1 == items) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
  }
};

// The wall time the call took, in nanoseconds.
int64_t fork_join(ffi::ThreadPool& pool, long items, std::function<void(long)> item) {
  const auto started = std::chrono::steady_clock::now();
  auto job = std::make_shared<ForkJoin>();
  job->item = std::move(item);
  job->items = items;
  // The calling thread works too, so it plus num_threads() - 1 pool threads fill the pool's cores (one
  // more would only contend with them).
  const long helpers = std::min<long>(pool.num_threads() - 1, items - 1);
  for (long i = 0; i < helpers; ++i) pool.Schedule([job] { job->work(); });
  job->work();
  std::unique_lock<std::mutex> lock(job->mu);
  job->cv.wait(lock, [&] { return job->done.load() == job->items; });
  const auto spent = std::chrono::steady_clock::now() - started;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(spent).count();
}

constexpr long kStreamBytes = 16L << 20;  // measured: 17-270 MB outputs 5-22% faster, 4-10 MB even

// Wall time spent in layers (from the call to the last block's end) and their count, since the module
// loaded: what share of a network's time the 3x3 layers take (bench/profile_layers.py).
std::atomic<int64_t> g_layer_ns{0};
std::atomic<int64_t> g_layers{0};
std::atomic<int64_t> g_patch_ns{0};  // the same for srd_patch_matmul's 2x2 stride-2 layers

// The checks and settings every 3x3 handler shares (valid extents, bias and PReLU slopes, pads,
// activation, the output): an error message, or null.
// Activations may be float32 or bfloat16 (wino_layer.h): whether `type` is bfloat16, or an error message
// when it is neither.
const char* activation_type(ffi::DataType type, bool& bf16) {
  bf16 = type == ffi::DataType::BF16;
  return bf16 || type == ffi::DataType::F32 ? nullptr : "activations must be float32 or bfloat16";
}

const char* finish_layer(Layer& L, ffi::Buffer<ffi::S32> valid, ffi::Buffer<ffi::F32> bias,
                         ffi::Result<ffi::AnyBuffer>& y, int64_t pad_top, int64_t pad_left, int64_t activation,
                         float slope, int64_t isa) {
  if (valid.element_count() != 0 && (valid.dimensions().size() != 2 || valid.dimensions()[0] != L.n ||
                                     valid.dimensions()[1] != 2))
    return "valid must be empty or N x 2 (rows, columns)";
  if (activation < kNone || activation > kPReLU) return "unknown activation";
  // With PReLU, `bias` holds the bias and then the slopes (2 cout values): one buffer, one signature.
  const size_t per_channel = activation == kPReLU ? 2 : 1;
  if ((bias.element_count() != 0 || activation == kPReLU) &&
      bias.element_count() != per_channel * static_cast<size_t>(L.cout))
    return "bias must be empty or have cout elements (PReLU: cout biases, then cout slopes)";
  if (!isa_supported(isa)) return "ISA not supported here";
  L.valid = valid.element_count() ? valid.typed_data() : nullptr;
  L.bias = bias.element_count() ? bias.typed_data() : nullptr;
  L.slopes = activation == kPReLU ? L.bias + L.cout : nullptr;
  if (const char* why = activation_type(y->element_type(), L.y16)) return why;
  L.y = y->untyped_data();
  L.th = (L.oh + 5) / 6;
  L.tw = (L.ow + 5) / 6;
  L.pad_top = static_cast<int>(pad_top);
  L.pad_left = static_cast<int>(pad_left);
  L.act = static_cast<int>(activation);
  L.slope = slope;
  // Outputs far bigger than the caches are written around them: a normal store first reads each line
  // it fills (a third of the memory traffic of such a layer), and the next layer finds none of it cached.
  const long out_bytes = static_cast<long>(y->size_bytes());
  // (bfloat16: whole lines, 32 channels at a time, wino_kernel.inc transform_output_streamed16).
  L.stream = out_bytes > kStreamBytes && L.cout % (L.y16 ? 32 : 16) == 0 && reinterpret_cast<uintptr_t>(L.y) % 64 == 0;
  return nullptr;
}

// The Winograd handlers' common part: checks, then the blocks of tiles over the pool's threads. `u` is
// checked by the caller, which fills L.u / L.u16, cin_padded and cout_padded.
ffi::Error run_layer(ffi::ThreadPool pool, Layer L, ffi::Buffer<ffi::S32> valid, ffi::Buffer<ffi::F32> bias,
                     ffi::Result<ffi::AnyBuffer> y, int64_t pad_top, int64_t pad_left, int64_t activation,
                     float slope, int64_t isa, int64_t block) {
  if (const char* why = finish_layer(L, valid, bias, y, pad_top, pad_left, activation, slope, isa))
    return ffi::Error::InvalidArgument(std::string(L.u16 ? "srd_winograd_f63_bf16: " : "srd_winograd_f63: ") + why);
  if (L.n == 0 || L.oh <= 0 || L.ow <= 0) return ffi::Error::Success();
  const Kernel kernel = kernel_for(isa);
  const BlockPlan plan = block > 0 ? BlockPlan{static_cast<int>(block), L.cout_padded}
                                   : plan_blocks(L, kernel.mr, L.u16 != nullptr, pool.num_threads());
  const int nb = plan.tiles;
  L.group = plan.group;
  const long rows = (nb + kernel.mr - 1) / kernel.mr * kernel.mr;
  const size_t need = static_cast<size_t>(scratch_size(static_cast<int>(rows), L.cin_padded, L.group));
  const int64_t ns = fork_join(pool, (L.tiles() + nb - 1) / nb, [L, kernel, nb, need](long b) {
    thread_local std::vector<float> scratch;
    if (scratch.size() < need) scratch.resize(need);
    kernel.run(L, b, nb, scratch.data());
  });
  g_layer_ns.fetch_add(ns);
  g_layers.fetch_add(1);
  return ffi::Error::Success();
}

// The input parts, y and 4-D u: the layer's sizes and input pointers; an error message when they do not
// fit together (parts of one N x h x w, 1 to kMaxParts of them, all but the last a multiple of 16 channels).
// With `addend` (add_top, add_left >= 0) the last remaining argument is the addend of a single part.
const char* layer_shape(Layer& L, const ffi::RemainingArgs& xs, ffi::Span<const int64_t> yd, size_t u_rank,
                        size_t bias_rank, int64_t addend, int64_t add_top, int64_t add_left) {
  if (u_rank != 4 || yd.size() != 4 || bias_rank != 1) return "u and y must be 4-D and bias 1-D";
  const size_t given = xs.size() - (addend ? 1 : 0);
  if (xs.size() < 1 || given < 1 || given > static_cast<size_t>(kMaxParts)) return "1 to 8 input parts";
  if (addend && given != 1) return "an addend goes with one input part";
  L.parts = static_cast<int>(given);
  L.cin = 0;
  for (int i = 0; i < L.parts; ++i) {
    auto part = xs.get<ffi::AnyBuffer>(i);
    if (!part.has_value()) return "the input parts must be buffers";
    if (const char* why = activation_type(part->element_type(), L.x16[i])) return why;
    const auto xd = part->dimensions();
    if (xd.size() != 4) return "the input parts must be 4-D (NHWC)";
    if (i == 0) {
      L.n = static_cast<int>(xd[0]);
      L.h = static_cast<int>(xd[1]);
      L.w = static_cast<int>(xd[2]);
    } else if (xd[0] != L.n || xd[1] != L.h || xd[2] != L.w) {
      return "the input parts must have one batch, height and width";
    }
    if (i + 1 < L.parts && xd[3] % 16 != 0) return "every input part but the last needs a multiple of 16 channels";
    L.xs[i] = part->untyped_data();
    L.xc[i] = static_cast<int>(xd[3]);
    L.cin += L.xc[i];
  }
  if (addend) {
    auto add = xs.get<ffi::AnyBuffer>(given);
    if (!add.has_value()) return "the addend must be a buffer";
    if (const char* why = activation_type(add->element_type(), L.add16)) return why;
    const auto ad = add->dimensions();
    if (ad.size() != 4 || ad[0] != L.n || ad[3] != L.cin || add_top < 0 || add_left < 0 ||
        ad[1] < L.h + add_top || ad[2] < L.w + add_left)
      return "the addend must be N x H x W x cin, covering the input from (add_top, add_left) on";
    L.addend = add->untyped_data();
    L.add_h = static_cast<int>(ad[1]);
    L.add_w = static_cast<int>(ad[2]);
    L.add_top = static_cast<int>(add_top);
    L.add_left = static_cast<int>(add_left);
  }
  if (yd[0] != L.n) return "y must have the input's batch";
  L.oh = static_cast<int>(yd[1]);
  L.ow = static_cast<int>(yd[2]);
  L.cout = static_cast<int>(yd[3]);
  return nullptr;
}

int64_t best_bf16_isa() { return isa_supported(kAmx) ? kAmx : kAvx512Bf16; }

// The packed weights' sizes (ud) into L.nr, cin_padded and cout_padded, checked against the layer: float32
// [64][ceil(cout / nr)][cin rounded up to 16][nr], nr 32 (or 16 for at most 16 outputs); bfloat16 pairs
// [64][cout rounded up to 32, / 16][cin rounded up to 32, / 2][32]. An error message, or null.
const char* packed_u_shape(Layer& L, ffi::Span<const int64_t> ud, bool bf16) {
  const int in_multiple = bf16 ? 32 : 16;
  L.nr = bf16 ? kNR : static_cast<int>(ud[3]);
  L.cout_padded = static_cast<int>(bf16 ? ud[1] * 16 : ud[1] * ud[3]);
  L.cin_padded = static_cast<int>(bf16 ? ud[2] * 2 : ud[2]);
  const bool panel_ok = bf16 ? ud[3] == 32 && L.cout_padded % kNR == 0 : L.nr == kNR || L.nr == kNarrowNR;
  if (ud[0] != 64 || !panel_ok || L.cin_padded % in_multiple != 0 || L.cin_padded < L.cin ||
      L.cin_padded >= L.cin + in_multiple || L.cout > L.cout_padded || L.cout_padded >= L.cout + L.nr)
    return bf16 ? "u must be [64][cout rounded up to 32, / 16][cin rounded up to 32, / 2][32]"
                : "u must be [64][ceil(cout/nr)][cin rounded up to 16][nr], nr 32 (or 16 for at most 16 outputs),"
                  " for x and y";
  return nullptr;
}

// srd_winograd_f63 (float32 weights, kU F32, the float32 ISAs) and srd_winograd_f63_bf16 (bfloat16
// pairs, kU U16, AMX or AVX512-BF16).
template <ffi::DataType kU>
ffi::Error winograd_impl(ffi::ThreadPool pool, ffi::Buffer<ffi::S32> valid, ffi::Buffer<kU> u,
                         ffi::Buffer<ffi::F32> bias, ffi::RemainingArgs xs, ffi::Result<ffi::AnyBuffer> y,
                         int64_t pad_top, int64_t pad_left, int64_t activation, float slope, int64_t isa,
                         int64_t block, int64_t addend, int64_t add_top, int64_t add_left) {
  constexpr bool bf16 = kU == ffi::U16;
  const std::string name = bf16 ? "srd_winograd_f63_bf16: " : "srd_winograd_f63: ";
  const auto ud = u.dimensions();
  Layer L{};
  if (const char* why = layer_shape(L, xs, y->dimensions(), ud.size(), bias.dimensions().size(), addend, add_top,
                                    add_left))
    return ffi::Error::InvalidArgument(name + why);
  if (const char* why = packed_u_shape(L, ud, bf16)) return ffi::Error::InvalidArgument(name + why);
  const int64_t chosen = isa == kAuto ? (bf16 ? best_bf16_isa() : best_isa()) : isa;
  if (is_bf16_isa(chosen) != bf16)
    return ffi::Error::InvalidArgument(name + (bf16 ? "only the bfloat16 ISAs (amx, avx512bf16)"
                                                    : "the bfloat16 kernels take bfloat16 weights"));
  if constexpr (bf16)
    L.u16 = u.typed_data();
  else
    L.u = u.typed_data();
  return run_layer(pool, L, valid, bias, y, pad_top, pad_left, activation, slope, chosen, block);
}


using DirectFn = void (*)(const Layer&, long);

// "srd_conv3x3_direct": a 3x3 stride-1 layer with at most kDirectMaxOut outputs, direct (direct_kernel.inc),
// of one input part with a multiple of 16 channels; w is [3][3][cout][cin]. Same operands and attributes
// as srd_winograd_f63 but for the addend, and the same time counters.
ffi::Error direct_impl(ffi::ThreadPool pool, ffi::Buffer<ffi::S32> valid, ffi::Buffer<ffi::F32> w,
                       ffi::Buffer<ffi::F32> bias, ffi::RemainingArgs xs, ffi::Result<ffi::AnyBuffer> y,
                       int64_t pad_top, int64_t pad_left, int64_t activation, float slope, int64_t isa) {
  const auto wd = w.dimensions();
  Layer L{};
  if (const char* why = layer_shape(L, xs, y->dimensions(), wd.size(), bias.dimensions().size(), 0, 0, 0))
    return ffi::Error::InvalidArgument(std::string("srd_conv3x3_direct: ") + why);
  if (L.parts != 1 || L.cin % 16 != 0 || L.cout > kDirectMaxOut || wd[0] != 3 || wd[1] != 3 || wd[2] != L.cout ||
      wd[3] != L.cin)
    return ffi::Error::InvalidArgument(
        "srd_conv3x3_direct: one input part of a multiple of 16 channels, at most 4 outputs, w [3][3][cout][cin]");
  const int64_t chosen = isa == kAuto ? best_isa() : isa;
  if (is_bf16_isa(chosen))
    return ffi::Error::InvalidArgument("srd_conv3x3_direct: float32 ISAs only");
  L.w_direct = w.typed_data();
  if (const char* why = finish_layer(L, valid, bias, y, pad_top, pad_left, activation, slope, chosen))
    return ffi::Error::InvalidArgument(std::string("srd_conv3x3_direct: ") + why);
  if (L.y16) return ffi::Error::InvalidArgument("srd_conv3x3_direct: the output must be float32");
  if (L.n == 0 || L.oh <= 0 || L.ow <= 0) return ffi::Error::Success();
  const DirectFn run = SRD_ISA_ENTRY(chosen, run_direct_item);
  const long items = static_cast<long>(L.n) * ((L.oh + kDirectBand - 1) / kDirectBand);
  g_layer_ns.fetch_add(fork_join(pool, items, [L, run](long item) { run(L, item); }));
  g_layers.fetch_add(1);
  return ffi::Error::Success();
}

using PatchFn = void (*)(const PatchLayer&, long);

// The layer's sizes from x, b (its dimensions bd: [phases][panels][k][panel width]) and y, checked;
// `bf16`: b holds bfloat16 pairs ([phases][cols / 16][K / 2][32]) instead of float32 panels
// ([phases][cols / 32][K][32]). An error message, or null.
const char* patch_shape(PatchLayer& P, ffi::Span<const int64_t> xd, ffi::Span<const int64_t> bd,
                        ffi::Span<const int64_t> yd, size_t bias_rank, size_t bias_count, int64_t mode,
                        int64_t activation, bool bf16) {
  if (xd.size() != 4 || yd.size() != 4 || bd.size() != 4 || bias_rank != 1) return "x, b and y must be 4-D, bias 1-D";
  if (mode != kDown && mode != kUp) return "unknown mode";
  if (activation < kNone || activation > kLeakyReLU) return "unknown activation";
  P.n = static_cast<int>(xd[0]);
  P.h = static_cast<int>(xd[1]);
  P.w = static_cast<int>(xd[2]);
  P.cin = static_cast<int>(xd[3]);
  P.cout = static_cast<int>(yd[3]);
  P.mode = static_cast<int>(mode);
  P.cols = mode == kDown ? P.cout : 2 * P.cout;
  const int64_t phases = mode == kDown ? 1 : 2, k = mode == kDown ? 4L * P.cin : P.cin;
  const bool shape_ok = mode == kDown ? yd[0] == xd[0] && yd[1] == xd[1] / 2 && yd[2] == xd[2] / 2
                                      : yd[0] == xd[0] && yd[1] == 2 * xd[1] && yd[2] == 2 * xd[2];
  const bool packed_ok = bf16 ? bd[1] * 16 == P.cols && bd[2] * 2 == k && bd[3] == 32
                              : bd[1] * kPatchNR == P.cols && bd[2] == k && bd[3] == kPatchNR;
  if (!shape_ok || P.cols % kPatchNR != 0 || bd[0] != phases || !packed_ok)
    return bf16 ? "b must be [1][cout / 16][2 cin][32] (down) or [2][2 cout / 16][cin / 2][32] (up), y"
                  " N x h/2 x w/2 x cout (down) or N x 2h x 2w x cout (up)"
                : "b must be [1][cout / 32][4 cin][32] (down) or [2][2 cout / 32][cin][32] (up), y"
                  " N x h/2 x w/2 x cout (down) or N x 2h x 2w x cout (up)";
  // The bfloat16 kernels round A's halves (2 cin down, cin up) 32 values at a time.
  if (bf16 && (mode == kDown ? P.cin % 16 : P.cin % 32) != 0)
    return "the bfloat16 op needs a multiple of 16 input channels (down) or of 32 (up)";
  if (bias_count != 0 && bias_count != static_cast<size_t>(P.cols)) return "bias must be empty or have one value per column";
  return nullptr;
}

ffi::Error run_patch(ffi::ThreadPool pool, PatchLayer P, const float* bias, size_t bias_count,
                     ffi::Result<ffi::AnyBuffer>& y, float slope, int64_t activation, int64_t isa) {
  if (P.items() == 0 || y->element_count() == 0) return ffi::Error::Success();
  P.bias = bias_count ? bias : nullptr;
  P.y = y->untyped_data();
  P.act = static_cast<int>(activation);
  P.slope = slope;
  const long out_bytes = static_cast<long>(y->size_bytes());
  P.stream = out_bytes > kStreamBytes && reinterpret_cast<uintptr_t>(P.y) % 64 == 0;
  const PatchFn run = SRD_ISA_ENTRY(isa, run_patch_item);
  g_patch_ns.fetch_add(fork_join(pool, P.items(), [P, run](long i) { run(P, i); }));
  return ffi::Error::Success();
}

// srd_patch_matmul (float32 weights, kB F32) and srd_patch_matmul_bf16 (bfloat16 pairs, kB U16).
template <ffi::DataType kB>
ffi::Error patch_impl(ffi::ThreadPool pool, ffi::AnyBuffer x, ffi::Buffer<kB> b, ffi::Buffer<ffi::F32> bias,
                      ffi::Result<ffi::AnyBuffer> y, int64_t mode, int64_t activation, float slope, int64_t isa) {
  constexpr bool bf16 = kB == ffi::U16;
  const std::string name = bf16 ? "srd_patch_matmul_bf16: " : "srd_patch_matmul: ";
  PatchLayer P{};
  if (const char* why = patch_shape(P, x.dimensions(), b.dimensions(), y->dimensions(), bias.dimensions().size(),
                                    bias.element_count(), mode, activation, bf16))
    return ffi::Error::InvalidArgument(name + why);
  for (const char* why : {activation_type(x.element_type(), P.x16), activation_type(y->element_type(), P.y16)})
    if (why) return ffi::Error::InvalidArgument(name + why);
  P.x = x.untyped_data();
  const int64_t chosen = isa == kAuto ? (bf16 ? best_bf16_isa() : best_isa()) : isa;
  if (!isa_supported(chosen) || is_bf16_isa(chosen) != bf16)
    return ffi::Error::InvalidArgument(name + (bf16 ? "only the bfloat16 ISAs (amx, avx512bf16), where supported"
                                                    : "ISA not supported here (float32 ISAs only)"));
  if constexpr (bf16)
    P.b16 = b.typed_data();
  else
    P.b = b.typed_data();
  return run_patch(pool, P, bias.typed_data(), bias.element_count(), y, slope, activation, chosen);
}

}  // namespace
}  // namespace srd_wino

XLA_FFI_DEFINE_HANDLER_SYMBOL(SrdWinogradF63, srd_wino::winograd_impl<ffi::F32>,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // valid
                                  .Arg<ffi::Buffer<ffi::F32>>()  // u
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .RemainingArgs()  // the input parts (float32 or bfloat16)
                                  .Ret<ffi::AnyBuffer>()  // float32 or bfloat16
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left")
                                  .Attr<int64_t>("activation")
                                  .Attr<float>("slope")
                                  .Attr<int64_t>("isa")
                                  .Attr<int64_t>("block")
                                  .Attr<int64_t>("addend")
                                  .Attr<int64_t>("add_top")
                                  .Attr<int64_t>("add_left"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SrdWinogradF63Bf16, srd_wino::winograd_impl<ffi::U16>,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // valid
                                  .Arg<ffi::Buffer<ffi::U16>>()  // u
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .RemainingArgs()  // the input parts (float32 or bfloat16)
                                  .Ret<ffi::AnyBuffer>()  // float32 or bfloat16
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left")
                                  .Attr<int64_t>("activation")
                                  .Attr<float>("slope")
                                  .Attr<int64_t>("isa")
                                  .Attr<int64_t>("block")
                                  .Attr<int64_t>("addend")
                                  .Attr<int64_t>("add_top")
                                  .Attr<int64_t>("add_left"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SrdConv3x3Direct, srd_wino::direct_impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // valid
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w, [3][3][cout][cin]
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .RemainingArgs()  // the input (float32 or bfloat16)
                                  .Ret<ffi::AnyBuffer>()  // float32
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left")
                                  .Attr<int64_t>("activation")
                                  .Attr<float>("slope")
                                  .Attr<int64_t>("isa"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SrdPatchMatmul, srd_wino::patch_impl<ffi::F32>,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()  // x, float32 or bfloat16
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b, packed
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Ret<ffi::AnyBuffer>()  // float32 or bfloat16
                                  .Attr<int64_t>("mode")
                                  .Attr<int64_t>("activation")
                                  .Attr<float>("slope")
                                  .Attr<int64_t>("isa"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SrdPatchMatmulBf16, srd_wino::patch_impl<ffi::U16>,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()  // x, float32 or bfloat16
                                  .Arg<ffi::Buffer<ffi::U16>>()  // b, packed as bfloat16 pairs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Ret<ffi::AnyBuffer>()  // float32 or bfloat16
                                  .Attr<int64_t>("mode")
                                  .Attr<int64_t>("activation")
                                  .Attr<float>("slope")
                                  .Attr<int64_t>("isa"));

namespace {

PyObject* py_handler(PyObject*, PyObject*) {
  return PyCapsule_New(reinterpret_cast<void*>(SrdWinogradF63), nullptr, nullptr);
}

PyObject* py_handler_bf16(PyObject*, PyObject*) {
  return PyCapsule_New(reinterpret_cast<void*>(SrdWinogradF63Bf16), nullptr, nullptr);
}

PyObject* py_handler_patch(PyObject*, PyObject*) {
  return PyCapsule_New(reinterpret_cast<void*>(SrdPatchMatmul), nullptr, nullptr);
}

PyObject* py_handler_patch_bf16(PyObject*, PyObject*) {
  return PyCapsule_New(reinterpret_cast<void*>(SrdPatchMatmulBf16), nullptr, nullptr);
}

PyObject* py_handler_direct(PyObject*, PyObject*) {
  return PyCapsule_New(reinterpret_cast<void*>(SrdConv3x3Direct), nullptr, nullptr);
}

PyObject* py_isa_supported(PyObject*, PyObject* arg) {
  const long isa = PyLong_AsLong(arg);
  if (isa == -1 && PyErr_Occurred()) return nullptr;
  return PyBool_FromLong(srd_wino::isa_supported(isa));
}

PyObject* py_best_isa(PyObject*, PyObject*) { return PyLong_FromLong(srd_wino::best_isa()); }

PyObject* py_block_budget(PyObject*, PyObject*) { return PyLong_FromLong(srd_wino::block_budget()); }

// plan_blocks(cin_padded, cout_padded, tiles, threads, isa): (tiles per block, output channels per pass)
// as run_layer plans such a layer (float32 weights, or bfloat16 for the bfloat16 ISA codes), for tests.
PyObject* py_plan_blocks(PyObject*, PyObject* args) {
  int cin = 0, cout = 0, threads = 0;
  long tiles = 0, isa = 0;
  if (!PyArg_ParseTuple(args, "iilil", &cin, &cout, &tiles, &threads, &isa)) return nullptr;
  if (cin <= 0 || cout <= 0 || tiles <= 0 || threads <= 0 || !srd_wino::isa_supported(isa)) {
    PyErr_SetString(PyExc_ValueError, "positive sizes and an ISA this CPU runs");
    return nullptr;
  }
  srd_wino::Layer L{};
  L.cin_padded = cin;
  L.cout_padded = cout;
  L.n = 1;
  L.th = static_cast<int>(tiles);
  L.tw = 1;
  const bool bf16 = srd_wino::is_bf16_isa(isa);
  L.nr = cout <= srd_wino::kNarrowNR ? srd_wino::kNarrowNR : srd_wino::kNR;
  const srd_wino::BlockPlan plan = srd_wino::plan_blocks(L, srd_wino::kernel_for(isa).mr, bf16, threads);
  return Py_BuildValue("(ii)", plan.tiles, plan.group);
}

PyObject* py_layer_time(PyObject*, PyObject*) {
  return Py_BuildValue("(LLL)", static_cast<long long>(srd_wino::g_layer_ns.load()),
                       static_cast<long long>(srd_wino::g_layers.load()),
                       static_cast<long long>(srd_wino::g_patch_ns.load()));
}

PyMethodDef methods[] = {
    {"handler", py_handler, METH_NOARGS, "The XLA FFI handler of srd_winograd_f63, as a PyCapsule."},
    {"handler_bf16", py_handler_bf16, METH_NOARGS,
     "The XLA FFI handler of srd_winograd_f63_bf16 (AMX, bfloat16 weights), as a PyCapsule."},
    {"isa_supported", py_isa_supported, METH_O, "Whether this CPU runs the kernel built for an ISA code."},
    {"best_isa", py_best_isa, METH_NOARGS, "The ISA code the kernel uses when asked for 0 (auto)."},
    {"block_budget", py_block_budget, METH_NOARGS, "Bytes of V and M a block of tiles may take."},
    {"plan_blocks", py_plan_blocks, METH_VARARGS,
     "(tiles per block, output channels per pass) for (cin_padded, cout_padded, tiles, threads, isa code)."},
    {"layer_time", py_layer_time, METH_NOARGS,
     "(nanoseconds, layers) run by the Winograd kernel so far, and nanoseconds in srd_patch_matmul."},
    {"handler_direct", py_handler_direct, METH_NOARGS,
     "The XLA FFI handler of srd_conv3x3_direct (3x3, at most 4 outputs), as a PyCapsule."},
    {"handler_patch", py_handler_patch, METH_NOARGS, "The XLA FFI handler of srd_patch_matmul, as a PyCapsule."},
    {"handler_patch_bf16", py_handler_patch_bf16, METH_NOARGS,
     "The XLA FFI handler of srd_patch_matmul_bf16 (bfloat16 weights), as a PyCapsule."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "srd._winograd",
                      "Native Winograd F(6x6, 3x3) convolution for XLA on CPU.", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__winograd() {
  PyObject* m = PyModule_Create(&module);
  if (m == nullptr) return nullptr;
  if (PyModule_AddIntConstant(m, "NR", srd_wino::kNR) < 0) return nullptr;
  return m;
}
