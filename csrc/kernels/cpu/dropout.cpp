#include "kernels/cpu/dropout.h"

#include "core/parallel.h"
#include "core/rng.h"

namespace dc::cpu {

void dropout_mask_into(const Tensor& mask, double p, uint64_t seed, uint64_t start) {
  const int64_t n = mask.numel();
  DC_DISPATCH_FLOAT(mask.dtype(), "dropout", [&] {
    scalar_t* m = mask.data<scalar_t>();
    const scalar_t scale = static_cast<scalar_t>(1.0 / (1.0 - p));
    // u is uniform on the 2^24-point grid of [0, 1) (as rand() for float32); keep iff u >= p,
    // so P(keep) = 1 - p up to 2^-24.
    const float pf = static_cast<float>(p);
    parallel_for(0, (n + 3) / 4, 2048, [&](int64_t b, int64_t e) {
      for (int64_t blk = b; blk < e; ++blk) {
        const auto r = philox(seed, start + static_cast<uint64_t>(blk));
        for (int k = 0; k < 4 && blk * 4 + k < n; ++k)
          m[blk * 4 + k] = uint_to_unit_float(r[k]) >= pf ? scale : scalar_t(0);
      }
    });
  });
}

}  // namespace dc::cpu
