// CUDA dropout masks: dc::cpu::dropout_mask_into's contract (kernels/cpu/dropout.h) with the
// cpu's numbers. A thread per Philox counter writes the mask elements that counter draws
// (dropout_counter, kernels/random_draws.h: 4 float or 2 double elements), so the mask depends
// only on (seed, start) and equals the cpu's bit for bit; tests/cpp/test_random.cpp checks
// dropout_counter against the cpu fill.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"
#include "kernels/random_draws.h"

namespace dc::cuda_kernels {
namespace {

template <typename T>
__global__ void dropout_counters(T* mask, int64_t n, int64_t counters, uint64_t seed,
                                 uint64_t start, T keep, T scale) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < counters;
       t += step)
    dropout_counter(mask, n, seed, start, t, keep, scale);
}

template <typename T>
void mask_as(const Tensor& mask, double p, uint64_t seed, uint64_t start) {
  const int64_t n = mask.numel();
  const int64_t counters = static_cast<int64_t>(random_fill_counters(n));
  const LaunchConfig c = elementwise_launch(counters, max_blocks(mask.device()));
  if (c.blocks == 0) return;
  dropout_counters<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      static_cast<T*>(mask.data_ptr()), n, counters, seed, start, static_cast<T>(1.0 - p),
      static_cast<T>(1.0 / (1.0 - p)));
  check_launch("dropout");
}

void cuda_dropout_mask_into(const Tensor& mask, double p, uint64_t seed, uint64_t start) {
  with_float_type(mask.dtype(), "dropout", [&](auto* t) {
    mask_as<std::remove_pointer_t<decltype(t)>>(mask, p, seed, start);
  });
}

}  // namespace

void fill_dropout(dispatch::KernelTable& t) { t.dropout_mask_into = cuda_dropout_mask_into; }

}  // namespace dc::cuda_kernels
