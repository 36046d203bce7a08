#include "kernels/cpu/dropout.h"

#include "core/parallel.h"
#include "kernels/cpu/creation.h"

namespace dc::cpu {

// The vectorised Bernoulli fill (kernels/cpu/vec/random_kernels.cpp) keeps an element with
// probability 1 - p (a uniform on the 2^24-point grid of [0, 1) below 1 - p), then one pass
// scales the kept ones by 1 / (1 - p). Counters: random_fill_counters(numel), as every fill.
void dropout_mask_into(const Tensor& mask, double p, uint64_t seed, uint64_t start) {
  const int64_t n = mask.numel();
  DC_DISPATCH_FLOAT(mask.dtype(), "dropout", [&] {
    Tensor keep = Tensor::empty({}, mask.dtype(), mask.device());
    *keep.data<scalar_t>() = static_cast<scalar_t>(1.0 - p);
    bernoulli_into(mask, keep, seed, start);
    scalar_t* m = mask.data<scalar_t>();
    const scalar_t scale = static_cast<scalar_t>(1.0 / (1.0 - p));
    parallel_for(0, n, kGrainSize, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) m[i] *= scale;
    });
  });
}

}  // namespace dc::cpu
