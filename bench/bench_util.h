#pragma once
// Helpers shared by the C++ microbenchmarks: inputs, FLOP counters, and the thread count and ISA
// a benchmark runs under.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/isa.h"

namespace dc::bench {

using dc::cpu::Isa;

template <typename T>
std::vector<T> random_vector(int64_t n) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

inline void set_flops(benchmark::State& state, int64_t M, int64_t N, int64_t K) {
  state.counters["FLOPS"] = benchmark::Counter(2.0 * double(M) * double(N) * double(K),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// Restores the thread count and ISA a benchmark changed.
struct Settings {
  int threads = dc::get_num_threads();
  Isa isa = dc::cpu::active_isa();
  ~Settings() {
    dc::set_num_threads(threads);
    dc::cpu::set_active_isa(isa);
  }
};

inline bool apply(benchmark::State& state, int threads, Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(dc::cpu::detected_isa())) {
    state.SkipWithError("ISA not available on this CPU");
    return false;
  }
  dc::cpu::set_active_isa(isa);
  dc::set_num_threads(threads > 0 ? threads : dc::get_num_threads());
  return true;
}

// With --benchmark_repetitions=N, also report the best repetition: on a shared machine the
// best run is the one least disturbed by other processes (FLOPS "max" is the figure to quote).
inline double best_of(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

}  // namespace dc::bench
