#include "kernels/cpu/creation.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/isa.h"
#include "kernels/random_draws.h"

namespace dc::cpu {

void fill_int64_into(const Tensor& out, int64_t value) {
  int64_t* p = out.data<int64_t>();
  std::fill(p, p + out.numel(), value);
}

void arange_into(const Tensor& out, double start, double step) {
  const int64_t n = out.numel();
  DC_DISPATCH_ALL_AND_HALF(out.dtype(), "arange", [&] {
    scalar_t* p = out.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(start + i * step);
  });
}

void linspace_into(const Tensor& out, double start, double end) {
  const int64_t steps = out.numel();
  const double step = steps > 1 ? (end - start) / (steps - 1) : 0.0;
  DC_DISPATCH_ALL_AND_HALF(out.dtype(), "linspace", [&] {
    scalar_t* p = out.data<scalar_t>();
    const int64_t half = steps == 1 ? 1 : steps / 2;
    for (int64_t i = 0; i < steps; ++i)
      p[i] = static_cast<scalar_t>(i < half ? start + step * i : end - step * (steps - 1 - i));
  });
}

void fill_diagonal_into(const Tensor& out, double value) {
  const int64_t n = out.sizes()[0], m = out.sizes()[1];
  DC_DISPATCH_ALL_AND_HALF(out.dtype(), "eye", [&] {
    scalar_t* p = out.data<scalar_t>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = static_cast<scalar_t>(value);
  });
}

namespace {
// The active ISA's build of each random fill, chosen by the element type of a null pointer.
#define DC_PICK_ISA(fn) for_active_isa(&generic::fn, &avx2::fn, &avx512::fn)
auto uniform_fill(float*) { return DC_PICK_ISA(uniform_fill_f32); }
auto uniform_fill(double*) { return DC_PICK_ISA(uniform_fill_f64); }
auto normal_fill(float*) { return DC_PICK_ISA(normal_fill_f32); }
auto normal_fill(double*) { return DC_PICK_ISA(normal_fill_f64); }
auto bernoulli_fill(float*) { return DC_PICK_ISA(bernoulli_fill_f32); }
auto bernoulli_fill(double*) { return DC_PICK_ISA(bernoulli_fill_f64); }
#undef DC_PICK_ISA

// Runs fill(out, begin, end) over the contiguous `out` in whole Philox blocks, split across
// threads at block boundaries (Note [Random streams]).
template <typename T, typename F>
void fill_in_blocks(const Tensor& out, const F& fill) {
  const int64_t n = out.numel(), block = random_block_elems(sizeof(T));
  // A normal costs a few ns per element: 8K elements are worth waking a thread for.
  constexpr int64_t kGrainElems = 8192;
  T* p = out.data<T>();
  parallel_for(0, (n + block - 1) / block, kGrainElems / block, [&](int64_t b, int64_t e) {
    fill(p, b * block, std::min(e * block, n));
  });
}
}  // namespace

namespace {
// A 16-bit float output draws float32 values (the same stream as a float32 tensor) and rounds
// them, as torch does.
template <typename Fill>
bool drawn_widened(const Tensor& out, const Fill& fill) {
  if (!is_reduced_float(out.dtype())) return false;
  const Tensor wide = Tensor::empty(out.sizes(), DType::Float32);
  fill(wide);
  cast_into(out, wide);
  return true;
}
}  // namespace

namespace {
// A float32 draw just below `high` can round up to `high` in 16 bits; those take the largest
// 16-bit value below it instead, so the interval stays half-open [low, high).
template <typename H>
void keep_below(H* p, int64_t n, double low, double high) {
  for (int64_t i = 0; i < n; ++i) {
    if (!(static_cast<double>(static_cast<float>(p[i])) >= high)) continue;
    uint16_t b = p[i].x;
    while (static_cast<double>(static_cast<float>(H::from_bits(b))) >= high &&
           static_cast<double>(static_cast<float>(H::from_bits(b))) > low)
      b = (b & 0x8000u) ? static_cast<uint16_t>(b + 1)
                        : b == 0 ? uint16_t(0x8001u) : static_cast<uint16_t>(b - 1);
    p[i] = H::from_bits(b);
  }
}
}  // namespace

void uniform_into(const Tensor& out, double low, double high, uint64_t seed, uint64_t start) {
  if (drawn_widened(out, [&](const Tensor& w) { uniform_into(w, low, high, seed, start); })) {
    if (out.dtype() == DType::BFloat16) keep_below(out.data<BFloat16>(), out.numel(), low, high);
    else keep_below(out.data<Half>(), out.numel(), low, high);
    return;
  }
  DC_DISPATCH_FLOAT(out.dtype(), "uniform_", [&] {
    const auto fn = uniform_fill(static_cast<scalar_t*>(nullptr));
    fill_in_blocks<scalar_t>(out, [&](scalar_t* p, int64_t b, int64_t e) {
      fn(p, b, e, low, high, seed, start);
    });
  });
}

void normal_into(const Tensor& out, double mean, double stddev, uint64_t seed, uint64_t start) {
  if (drawn_widened(out, [&](const Tensor& w) { normal_into(w, mean, stddev, seed, start); }))
    return;
  DC_DISPATCH_FLOAT(out.dtype(), "normal_", [&] {
    const auto fn = normal_fill(static_cast<scalar_t*>(nullptr));
    fill_in_blocks<scalar_t>(out, [&](scalar_t* p, int64_t b, int64_t e) {
      fn(p, b, e, mean, stddev, seed, start);
    });
  });
}

void bernoulli_into(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t start) {
  if (drawn_widened(out, [&](const Tensor& w) {
        Tensor pw = Tensor::empty(p.sizes(), DType::Float32);
        cast_into(pw, p);
        bernoulli_into(w, pw, seed, start);
      }))
    return;
  DC_DISPATCH_FLOAT(out.dtype(), "bernoulli", [&] {
    const auto fn = bernoulli_fill(static_cast<scalar_t*>(nullptr));
    const scalar_t* pp = p.data<scalar_t>();
    const int64_t step = p.numel() == 1 ? 0 : 1;
    fill_in_blocks<scalar_t>(out, [&](scalar_t* o, int64_t b, int64_t e) {
      fn(o, pp, step, b, e, seed, start);
    });
  });
}

void randint_into(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t start) {
  const uint64_t range = randint_range(low, high);
  const int64_t n = out.numel();
  DC_DISPATCH_ALL_AND_HALF(out.dtype(), "randint", [&] {
    scalar_t* p = out.data<scalar_t>();
    // randint_quad (kernels/random_draws.h) is the CUDA kernel's draw too.
    parallel_for(0, (n + 3) / 4, 2048, [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) randint_quad(p, n, seed, start, q, low, range);
    });
  });
}

void permutation_into(const Tensor& out, const Tensor& keys) {
  const int64_t n = out.numel();
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  const int64_t* k = keys.data<int64_t>();
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[k[i] % (i + 1)]);
  DC_DISPATCH_ALL_AND_HALF(out.dtype(), "randperm", [&] {
    scalar_t* p = out.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(perm[i]);
  });
}

}  // namespace dc::cpu
