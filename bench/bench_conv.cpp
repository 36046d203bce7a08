// Convolution kernels (FLOP/s = 2 N K C KH KW OH OW per pass) on the layers of a ResNet-18
// with the small-input stem at batch 32, 32x32, and of the 56x56 layer that bench_cnn.py
// compares with torch: forward, input gradient and weight gradient, each timed alone.
// Run: see bench/README.md ("Convolution kernels").
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench_util.h"
#include "kernels/cpu/conv.h"

namespace {

using namespace dc::bench;

enum Pass { kForward = 0, kGradInput = 1, kGradWeight = 2 };

// Args: pass, N, C, H (= W), K, kernel, stride, threads (0 = all). Padding: kernel / 2.
void BM_conv2d_f32(benchmark::State& state) {
  Settings saved;
  if (!apply(state, int(state.range(7)), dc::cpu::detected_isa())) return;
  dc::cpu::ConvGeom g;
  g.N = state.range(1), g.C = state.range(2), g.H = g.W = state.range(3), g.K = state.range(4);
  g.KH = g.KW = state.range(5);
  g.sh = g.sw = state.range(6);
  g.ph = g.pw = g.KH / 2;
  g.OH = (g.H + 2 * g.ph - g.KH) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.KW) / g.sw + 1;
  const auto x = random_vector<float>(g.N * g.C * g.H * g.W);
  const auto w = random_vector<float>(g.K * g.C * g.KH * g.KW);
  const auto y = random_vector<float>(g.N * g.K * g.OH * g.OW);
  std::vector<float> out(std::max({x.size(), w.size(), y.size()}));
  const auto dt = dc::DType::Float32;
  for (auto _ : state) {
    switch (state.range(0)) {
      case kForward: dc::cpu::conv2d_forward(g, dt, x.data(), w.data(), nullptr, out.data()); break;
      case kGradInput: dc::cpu::conv2d_backward_input(g, dt, y.data(), w.data(), out.data()); break;
      default: dc::cpu::conv2d_backward_weight(g, dt, y.data(), x.data(), out.data());
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, g.N * g.K, g.C * g.KH * g.KW, g.OH * g.OW);
}

void resnet_args(benchmark::internal::Benchmark* b) {
  // N, C, H, K, kernel, stride
  const int64_t layers[][6] = {{32, 64, 32, 64, 3, 1},   {32, 64, 32, 128, 3, 2},
                               {32, 128, 16, 128, 3, 1}, {32, 64, 32, 128, 1, 2},
                               {32, 128, 16, 256, 3, 2}, {32, 256, 8, 256, 3, 1},
                               {32, 256, 8, 512, 3, 2},  {32, 512, 4, 512, 3, 1},
                               {32, 64, 56, 64, 3, 1}};
  for (int64_t pass : {kForward, kGradInput, kGradWeight})
    for (int64_t threads : {1, 0})
      for (const auto& l : layers) b->Args({pass, l[0], l[1], l[2], l[3], l[4], l[5], threads});
}

}  // namespace

BENCHMARK(BM_conv2d_f32)
    ->Apply(resnet_args)
    ->ArgNames({"pass", "N", "C", "H", "K", "k", "s", "threads"})
    ->UseRealTime()
    ->ComputeStatistics("max", best_of);
