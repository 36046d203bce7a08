// CUDA creation kernels: the contracts of kernels/cpu/creation.h (sequences, the identity's
// diagonal, the random fills, randperm's shuffle) and multinomial's categorical search
// (kernels/cpu/scan.h). Outputs are contiguous, allocated by the op.
//   arange, linspace   a thread per element, the cpu's double arithmetic with nothing fused
//                      (add_rn / mul_rn of kernels/random_draws.h: nvcc would otherwise turn
//                      start + i * step into a fused multiply-add and round differently).
//   uniform_, normal_, bernoulli, randint
//                      a thread per Philox counter (or per pair, randint) running the draws
//                      the cpu fills run (kernels/random_draws.h), so a (seed, start) gives the
//                      cpu's numbers bit for bit; tests/cpp/test_cuda_random.cpp holds the
//                      per-counter draws to the cpu fills.
//   permutation        the cpu's Fisher-Yates shuffle, the same permutation, in parallel rounds
//                      (Note [Parallel Fisher-Yates] in index_plan.h).
//   categorical_search a thread per draw, the cpu's binary search (categorical_index).
// Dtypes: bool, int32, int64, float32 and float64 (the random floats: float32 and float64); the
// sequences have no 16-bit float kernel yet (TypeError naming the op). The random fills of a
// 16-bit float output draw float32 and round it with the device's cast kernel, as the cpu does,
// so they give the cpu's numbers too.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cuda/index_plan.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"
#include "kernels/random_draws.h"

namespace dc::cuda_kernels {
namespace {


// ---- sequences -------------------------------------------------------------------------------

// out[i] = start + i * step, in double, then converted as static_cast does.
template <typename T>
__global__ void arange_kernel(T* out, int64_t n, double start, double step) {
  DC_GRID_STRIDE(i, n) {
    out[i] = static_cast<T>(add_rn(start, mul_rn(static_cast<double>(i), step)));
  }
}

void cuda_arange_into(const Tensor& out, double start, double step) {
  const int64_t n = out.numel();
  const LaunchConfig c = launch_for(n, out);
  if (c.blocks == 0) return;
  with_value_type(out.dtype(), "arange", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    arange_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        static_cast<T*>(out.data_ptr()), n, start, step);
  });
  check_launch("arange");
}

// From both ends, as the cpu: the first half start + step * i, the rest end - step * (n-1-i),
// so the last element is exactly `end`.
template <typename T>
__global__ void linspace_kernel(T* out, int64_t steps, int64_t half, double start, double end,
                                double step) {
  DC_GRID_STRIDE(i, steps) {
    const double v = i < half ? add_rn(start, mul_rn(step, static_cast<double>(i)))
                              : sub_rn(end, mul_rn(step, static_cast<double>(steps - 1 - i)));
    out[i] = static_cast<T>(v);
  }
}

void cuda_linspace_into(const Tensor& out, double start, double end) {
  const int64_t steps = out.numel();
  const LaunchConfig c = launch_for(steps, out);
  if (c.blocks == 0) return;
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  const int64_t half = steps == 1 ? 1 : steps / 2;
  with_value_type(out.dtype(), "linspace", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    linspace_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        static_cast<T*>(out.data_ptr()), steps, half, start, end, step);
  });
  check_launch("linspace");
}

// out (n, m), contiguous: out[i, i] = value for i < min(n, m); the rest is left as it is.
template <typename T>
__global__ void diagonal_kernel(T* out, int64_t count, int64_t m, T value) {
  DC_GRID_STRIDE(i, count) out[i * m + i] = value;
}

void cuda_fill_diagonal_into(const Tensor& out, double value) {
  const int64_t n = out.sizes()[0], m = out.sizes()[1], count = n < m ? n : m;
  const LaunchConfig c = launch_for(count, out);
  if (c.blocks == 0) return;
  with_value_type(out.dtype(), "eye", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    diagonal_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        static_cast<T*>(out.data_ptr()), count, m, static_cast<T>(value));
  });
  check_launch("eye");
}

// ---- random fills: a thread per Philox counter ----------------------------------------------

template <typename T>
__global__ void uniform_kernel(T* out, int64_t n, int64_t counters, uint64_t seed,
                               uint64_t start, T low, T span) {
  DC_GRID_STRIDE(t, counters) uniform_counter(out, n, seed, start, t, low, span);
}
template <typename T>
__global__ void normal_kernel(T* out, int64_t n, int64_t counters, uint64_t seed,
                              uint64_t start, T mean, T stddev) {
  DC_GRID_STRIDE(t, counters) normal_counter(out, n, seed, start, t, mean, stddev);
}
template <typename T>
__global__ void bernoulli_kernel(T* out, const T* p, int64_t p_step, int64_t n,
                                 int64_t counters, uint64_t seed, uint64_t start) {
  DC_GRID_STRIDE(t, counters) bernoulli_counter(out, p, p_step, n, seed, start, t);
}
template <typename T>
__global__ void randint_kernel(T* out, int64_t n, int64_t quads, uint64_t seed, uint64_t start,
                               int64_t low, uint64_t range) {
  DC_GRID_STRIDE(q, quads) randint_quad(out, n, seed, start, q, low, range);
}

// Runs launch(T*, counters, config) for out's float type, with the counters a fill of its
// numel needs.
template <typename F>
void random_fill(const Tensor& out, const char* op, F&& launch) {
  with_float_type(out.dtype(), op, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    const int64_t counters = random_counters_of(out.numel(), sizeof(T));
    const LaunchConfig c = launch_for(counters, out);
    if (c.blocks == 0) return;
    launch(static_cast<T*>(out.data_ptr()), counters, c);
    check_launch(op);
  });
}

// A 16-bit float output draws float32 values (the same stream as a float32 tensor) and rounds
// them through the device's cast (drawn_widened in kernels/cpu/creation.cpp does the same).
template <typename Fill>
bool drawn_widened(const Tensor& out, const Fill& fill) {
  if (!is_reduced_float(out.dtype())) return false;
  const Tensor wide = Tensor::empty(out.sizes(), DType::Float32, out.device());
  fill(wide);
  DC_KERNEL(cast_into)(out, wide);
  return true;
}

// keep_below_bits over a 16-bit uniform_ output; values: the output's values as float32.
__global__ void keep_below_kernel(uint16_t* bits, const float* values, int64_t n, double low,
                                  double high) {
  DC_GRID_STRIDE(i, n) bits[i] = keep_below_bits(bits[i], values[i], low, high);
}

void cuda_uniform_into(const Tensor& out, double low, double high, uint64_t seed,
                       uint64_t start) {
  const int64_t n = out.numel();
  if (drawn_widened(out, [&](const Tensor& w) { cuda_uniform_into(w, low, high, seed, start); })) {
    const LaunchConfig c = launch_for(n, out);
    if (c.blocks == 0) return;
    const Tensor values = Tensor::empty(out.sizes(), DType::Float32, out.device());
    DC_KERNEL(cast_into)(values, out);  // exact: every 16-bit float is a float32
    keep_below_kernel<<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        static_cast<uint16_t*>(out.data_ptr()), static_cast<const float*>(values.data_ptr()), n,
        low, high);
    check_launch("uniform_");
    return;
  }
  random_fill(out, "uniform_", [&](auto* p, int64_t counters, const LaunchConfig& c) {
    using T = std::remove_pointer_t<decltype(p)>;
    uniform_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        p, n, counters, seed, start, static_cast<T>(low), static_cast<T>(high - low));
  });
}

void cuda_normal_into(const Tensor& out, double mean, double stddev, uint64_t seed,
                      uint64_t start) {
  if (drawn_widened(out, [&](const Tensor& w) { cuda_normal_into(w, mean, stddev, seed, start); }))
    return;
  const int64_t n = out.numel();
  random_fill(out, "normal_", [&](auto* p, int64_t counters, const LaunchConfig& c) {
    using T = std::remove_pointer_t<decltype(p)>;
    normal_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        p, n, counters, seed, start, static_cast<T>(mean), static_cast<T>(stddev));
  });
}

// p: out's dtype, out's numel (contiguous) or one element.
void cuda_bernoulli_into(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t start) {
  if (drawn_widened(out, [&](const Tensor& w) {
        const Tensor pw = Tensor::empty(p.sizes(), DType::Float32, p.device());
        DC_KERNEL(cast_into)(pw, p);
        cuda_bernoulli_into(w, pw, seed, start);
      }))
    return;
  const int64_t n = out.numel();
  DC_CHECK(p.dtype() == out.dtype() && (p.numel() == n || p.numel() == 1), ValueError,
           "[bernoulli] probabilities of dtype ", dtype_name(p.dtype()), " and shape ",
           p.shape_str(), " do not fit an output of dtype ", dtype_name(out.dtype()),
           " and shape ", out.shape_str());
  const int64_t p_step = p.numel() == 1 ? 0 : 1;
  random_fill(out, "bernoulli", [&](auto* o, int64_t counters, const LaunchConfig& c) {
    using T = std::remove_pointer_t<decltype(o)>;
    bernoulli_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        o, static_cast<const T*>(p.data_ptr()), p_step, n, counters, seed, start);
  });
}

void cuda_randint_into(const Tensor& out, int64_t low, int64_t high, uint64_t seed,
                       uint64_t start) {
  // 16-bit floats: the int64 value rounds to float32, then to 16 bits, as the cpu's
  // static_cast<Half>(int64) does.
  if (drawn_widened(out, [&](const Tensor& w) { cuda_randint_into(w, low, high, seed, start); }))
    return;
  const int64_t n = out.numel(), quads = (n + 3) / 4;
  const LaunchConfig c = launch_for(quads, out);
  if (c.blocks == 0) return;
  const uint64_t range = randint_range(low, high);
  with_value_type(out.dtype(), "randint", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    randint_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        static_cast<T*>(out.data_ptr()), n, quads, seed, start, low, range);
  });
  check_launch("randint");
}

// ---- randperm's shuffle (Note [Parallel Fisher-Yates]) --------------------------------------

__global__ void shuffle_init(ShuffleArrays s, int64_t n) {
  DC_GRID_STRIDE(i, n) {
    s.perm[i] = i;
    s.state[i] = i == 0 ? kShuffleDone : kShuffleWaiting;
  }
}
__global__ void shuffle_reserve_kernel(ShuffleArrays s, int64_t n) {
  DC_GRID_STRIDE(i, n) shuffle_reserve<DeviceAtomics>(s, i);
}
__global__ void shuffle_commit_kernel(ShuffleArrays s, int64_t n, int64_t* waiting) {
  DC_GRID_STRIDE(i, n) shuffle_commit<DeviceAtomics>(s, i, waiting);
}
__global__ void shuffle_release_kernel(ShuffleArrays s, int64_t n) {
  DC_GRID_STRIDE(i, n) shuffle_release(s, i);
}
template <typename T>
__global__ void convert_index_kernel(T* out, const int64_t* perm, int64_t n) {
  DC_GRID_STRIDE(i, n) out[i] = static_cast<T>(perm[i]);
}

void cuda_permutation_into(const Tensor& out, const Tensor& keys) {
  const int64_t n = out.numel();
  const LaunchConfig c = launch_for(n, out);
  if (c.blocks == 0) return;
  const char* op = "randperm";
  const unsigned blocks = static_cast<unsigned>(c.blocks);
  // An int64 output is shuffled in place; any other dtype gets the int64 result converted.
  const bool in_place = out.dtype() == DType::Int64;
  DeviceBuffer scratch_perm(in_place ? 0 : static_cast<size_t>(n) * sizeof(int64_t));
  DeviceBuffer reserved(static_cast<size_t>(n) * sizeof(int64_t));
  DeviceBuffer state(static_cast<size_t>(n));
  DeviceBuffer waiting(sizeof(int64_t));
  ShuffleArrays s;
  s.keys = static_cast<const int64_t*>(keys.data_ptr());
  s.perm = in_place ? static_cast<int64_t*>(out.data_ptr()) : scratch_perm.as<int64_t>();
  s.reserved = reserved.as<int64_t>();
  s.state = state.as<uint8_t>();
  fill_device_bytes(s.reserved, 0xff, static_cast<size_t>(n) * sizeof(int64_t), op);
  shuffle_init<<<blocks, c.threads, 0, stream()>>>(s, n);
  check_launch(op);
  int64_t left = n - 1;
  for (int round = 0; left > 0 && round < kMaxShuffleRounds; ++round) {
    fill_device_bytes(waiting.get(), 0, sizeof(int64_t), op);
    shuffle_reserve_kernel<<<blocks, c.threads, 0, stream()>>>(s, n);
    shuffle_commit_kernel<<<blocks, c.threads, 0, stream()>>>(s, n, waiting.as<int64_t>());
    shuffle_release_kernel<<<blocks, c.threads, 0, stream()>>>(s, n);
    check_launch(op);
    copy_to_host(&left, waiting.get(), sizeof(int64_t), op);
  }
  if (left > 0) {  // keys that chain the steps: the host finishes in sequential order
    std::vector<int64_t> host_keys(static_cast<size_t>(n)), host_perm(static_cast<size_t>(n));
    std::vector<uint8_t> host_state(static_cast<size_t>(n));
    copy_to_host(host_keys.data(), s.keys, static_cast<size_t>(n) * sizeof(int64_t), op);
    copy_to_host(host_perm.data(), s.perm, static_cast<size_t>(n) * sizeof(int64_t), op);
    copy_to_host(host_state.data(), s.state, static_cast<size_t>(n), op);
    shuffle_finish(host_keys.data(), host_perm.data(), host_state.data(), n);
    copy_to_device(s.perm, host_perm.data(), static_cast<size_t>(n) * sizeof(int64_t));
  }
  if (in_place) return;
  with_value_type(out.dtype(), op, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    convert_index_kernel<T><<<blocks, c.threads, 0, stream()>>>(static_cast<T*>(out.data_ptr()),
                                                                 s.perm, n);
  });
  check_launch(op);
}

// ---- multinomial's search ------------------------------------------------------------------

// out[r, s] = categorical_index(cdf row r, u[r, s]); cdf (R, K), u and out (R, S), contiguous.
__global__ void categorical_kernel(int64_t* out, const double* cdf, const double* u,
                                   int64_t draws, int64_t K, int64_t S) {
  DC_GRID_STRIDE(t, draws) out[t] = categorical_index(cdf + t / S * K, K, u[t]);
}

void cuda_categorical_search(const Tensor& out, const Tensor& cdf, const Tensor& u) {
  const int64_t R = cdf.sizes()[0], K = cdf.sizes()[1], S = u.sizes()[1];
  const LaunchConfig c = launch_for(R * S, out);
  if (c.blocks == 0) return;
  DC_CHECK(K > 0, ValueError, "[multinomial] probabilities of shape ", cdf.shape_str(),
           " have no categories");
  categorical_kernel<<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      static_cast<int64_t*>(out.data_ptr()), static_cast<const double*>(cdf.data_ptr()),
      static_cast<const double*>(u.data_ptr()), R * S, K, S);
  check_launch("multinomial");
}

}  // namespace

void fill_creation(dispatch::KernelTable& t) {
  t.arange_into = cuda_arange_into;
  t.linspace_into = cuda_linspace_into;
  t.fill_diagonal_into = cuda_fill_diagonal_into;
  t.uniform_into = cuda_uniform_into;
  t.normal_into = cuda_normal_into;
  t.bernoulli_into = cuda_bernoulli_into;
  t.randint_into = cuda_randint_into;
  t.permutation_into = cuda_permutation_into;
  t.categorical_search = cuda_categorical_search;
}

}  // namespace dc::cuda_kernels
