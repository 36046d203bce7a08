// GEMM throughput (FLOP/s = 2 M N K per second) for square and MLP-shaped problems, per ISA and
// thread count, plus the machine's FMA peak to read the numbers against.
// Run: see bench/README.md ("GEMM").
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "bench_util.h"
#include "kernels/cpu/gemm/gemm.h"

namespace {

using namespace dc::bench;

// C[M, N] = A[M, K] @ B[K, N], all row-major; with transposed_b, B is a (N, K) weight read
// through strides (x @ W^T, the Linear layer).
template <typename T>
void run_gemm(benchmark::State& state, int64_t M, int64_t N, int64_t K, bool transposed_b) {
  const auto A = random_vector<T>(M * K), B = random_vector<T>(K * N);
  std::vector<T> C(static_cast<size_t>(M * N));
  const int64_t rsb = transposed_b ? 1 : N, csb = transposed_b ? K : 1;
  for (auto _ : state) {
    if constexpr (std::is_same<T, float>::value) {
      dc::cpu::gemm_f32(M, N, K, 1.0f, A.data(), K, 1, B.data(), rsb, csb, 0.0f, C.data(), N, 1);
    } else {
      dc::cpu::gemm_f64(M, N, K, 1.0, A.data(), K, 1, B.data(), rsb, csb, 0.0, C.data(), N, 1);
    }
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, M, N, K);
}

// Args: n, threads (0 = all), isa.
template <typename T>
void BM_gemm_square(benchmark::State& state) {
  Settings saved;
  if (!apply(state, int(state.range(1)), static_cast<Isa>(state.range(2)))) return;
  run_gemm<T>(state, state.range(0), state.range(0), state.range(0), false);
}

// Args: M, N, K, transposed_b, threads (0 = all).
void BM_gemm_shape_f32(benchmark::State& state) {
  Settings saved;
  if (!apply(state, int(state.range(4)), dc::cpu::detected_isa())) return;
  run_gemm<float>(state, state.range(0), state.range(1), state.range(2), state.range(3) != 0);
}

// Args: batch, n (batch of n x n x n products), threads (0 = all).
void BM_gemm_batched_f32(benchmark::State& state) {
  Settings saved;
  if (!apply(state, int(state.range(2)), dc::cpu::detected_isa())) return;
  const int64_t batch = state.range(0), n = state.range(1);
  const auto A = random_vector<float>(batch * n * n), B = random_vector<float>(batch * n * n);
  std::vector<float> C(static_cast<size_t>(batch * n * n));
  for (auto _ : state) {
    dc::cpu::gemm_batched_f32(batch, n, n, n, 1.0f, A.data(), n * n, n, 1, B.data(), n * n, n, 1,
                              0.0f, C.data(), n * n, n, 1);
    benchmark::DoNotOptimize(C.data());
  }
  set_flops(state, batch * n, n, n);
}

// The single-core f32 FMA peak: 12 independent chains of 512-bit FMAs (two FMA ports x 4
// cycles latency needs at least 8 in flight), i.e. the ceiling for a GEMM on one thread.
__attribute__((target("avx512f"))) void fma_peak_avx512(benchmark::State& state) {
  __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
         a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  const __m512 x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(1e-4f);
  constexpr int64_t kSteps = 1 << 16;
  for (auto _ : state) {
    for (int64_t s = 0; s < kSteps; ++s) {
      a0 = _mm512_fmadd_ps(a0, x, y), a1 = _mm512_fmadd_ps(a1, x, y);
      a2 = _mm512_fmadd_ps(a2, x, y), a3 = _mm512_fmadd_ps(a3, x, y);
      a4 = _mm512_fmadd_ps(a4, x, y), a5 = _mm512_fmadd_ps(a5, x, y);
      a6 = _mm512_fmadd_ps(a6, x, y), a7 = _mm512_fmadd_ps(a7, x, y);
      a8 = _mm512_fmadd_ps(a8, x, y), a9 = _mm512_fmadd_ps(a9, x, y);
      a10 = _mm512_fmadd_ps(a10, x, y), a11 = _mm512_fmadd_ps(a11, x, y);
      // Keeps every FMA: the compiler may not fold the chains it cannot see through.
      asm volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6),
                   "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
  }
  float sink[16];
  _mm512_storeu_ps(sink, _mm512_add_ps(a0, a11));
  benchmark::DoNotOptimize(sink);
  state.counters["FLOPS"] = benchmark::Counter(double(kSteps) * 12 * 16 * 2,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void BM_fma_peak_f32(benchmark::State& state) {
  if (dc::cpu::detected_isa() != Isa::avx512) {
    state.SkipWithError("needs AVX-512");
    return;
  }
  fma_peak_avx512(state);
}

constexpr int kAvx512 = static_cast<int>(Isa::avx512);
constexpr int kAvx2 = static_cast<int>(Isa::avx2);
constexpr int kGeneric = static_cast<int>(Isa::generic);

void square_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 0})
    for (int64_t n : {128, 256, 512, 1024, 2048}) b->Args({n, threads, kAvx512});
  b->Args({1024, 1, kAvx2});
  b->Args({512, 1, kGeneric});
}

}  // namespace

BENCHMARK(BM_fma_peak_f32)->UseRealTime()->ComputeStatistics("max", best_of);
BENCHMARK_TEMPLATE(BM_gemm_square, float)->Apply(square_args)->ArgNames({"n", "threads", "isa"})->UseRealTime()->ComputeStatistics("max", best_of);
BENCHMARK_TEMPLATE(BM_gemm_square, double)
    ->Args({256, 1, kAvx512})->Args({1024, 1, kAvx512})->Args({1024, 0, kAvx512})
    ->Args({1024, 1, kAvx2})->ArgNames({"n", "threads", "isa"})->UseRealTime()->ComputeStatistics("max", best_of);
// MLP shapes (M = batch 64 or 128): x[M, K] @ W^T with W stored (N, K) like torch.nn.Linear,
// and the same with a row-major (K, N) weight, 64x128 @ 128x64 on all threads and on one;
// then vector-matrix products (M = 1 and 4).
BENCHMARK(BM_gemm_shape_f32)
    ->Args({64, 128, 784, 1, 0})->Args({64, 128, 784, 0, 0})
    ->Args({64, 10, 128, 1, 0})->Args({64, 10, 128, 0, 0})
    ->Args({128, 128, 128, 1, 0})->Args({128, 128, 128, 0, 0})
    ->Args({64, 128, 784, 0, 1})->Args({128, 128, 128, 0, 1})
    ->Args({64, 64, 128, 0, 0})->Args({64, 64, 128, 0, 1})
    ->Args({1, 4096, 1024, 0, 1})->Args({4, 4096, 1024, 1, 1})
    ->ArgNames({"M", "N", "K", "wT", "threads"})->UseRealTime()->ComputeStatistics("max", best_of);
BENCHMARK(BM_gemm_batched_f32)->Args({32, 64, 0})->Args({8, 256, 0})
    ->ArgNames({"batch", "n", "threads"})->UseRealTime()->ComputeStatistics("max", best_of);

// All bench/*.cpp files link into one deepcore_bench program: this main is weak so that a
// shared one, if some other file defines it, takes precedence instead of clashing.
__attribute__((weak)) int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
