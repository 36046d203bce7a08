// The JIT's C++ pieces (jit/graph.h): the fused elementwise kernel against naive loops at
// awkward sizes and broadcast periods, 1 vs several threads, and graph replay with dead-code
// elimination and memory planning.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "jit/graph.h"
#include "kernels/cpu/elementwise.h"

namespace {

using dc::DType;
using dc::Shape;
using dc::Tensor;
using dc::tensor_list;
using dc::cpu::BinaryOp;
using dc::cpu::UnaryOp;

Tensor filled(const Shape& shape, uint32_t seed) {
  Tensor t = Tensor::empty(shape, DType::Float32);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

int64_t op(BinaryOp o) { return static_cast<int64_t>(o); }
int64_t op(UnaryOp o) { return static_cast<int64_t>(o); }

// out = relu(x * a - b) + c: x full, a of `period` elements, b one element, c full.
// Registers: 0..3 the inputs, 4.. the instructions.
dc::jit::Stack program(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& c,
                       const Shape& shape) {
  Shape code = {1, op(BinaryOp::mul), 0, 1,   // r4 = x * a
                1, op(BinaryOp::sub), 4, 2,   // r5 = r4 - b
                0, op(UnaryOp::relu), 5, 0,   // r6 = relu(r5)
                1, op(BinaryOp::add), 6, 3};  // r7 = r6 + c
  return {tensor_list{x, a, b, c}, code, Shape{5, 7}, shape};
}

struct Case {
  Shape shape;
  Shape a_shape;
};

const std::vector<Case> kCases = {
    {{1}, {1}},           {{7}, {7}},         {{511}, {1}},          {{513}, {513}},
    {{3, 171}, {171}},    {{5, 7, 3}, {3}},   {{5, 7, 3}, {7, 3}},   {{2, 700}, {700}},
    {{3, 600, 4}, {4}},   {{4099}, {1}},      {{1000, 8}, {8}},      {{2, 3, 1025}, {3, 1025}},
};

TEST(JitFusion, MatchesNaiveLoopsAtAwkwardSizes) {
  const int fused = dc::jit::fused_elementwise_op();
  for (const Case& cs : kCases) {
    Tensor x = filled(cs.shape, 1), a = filled(cs.a_shape, 2), b = filled({1}, 3),
           c = filled(cs.shape, 4);
    dc::jit::Stack s = program(x, a, b, c, cs.shape);
    const tensor_list outs = dc::jit::op_invoker(fused)(s);
    ASSERT_EQ(outs.size(), 2u);
    const int64_t n = x.numel(), p = a.numel();
    for (int64_t i = 0; i < n; ++i) {
      volatile float prod = x.data<float>()[i] * a.data<float>()[i % p];  // no contraction
      volatile float diff = prod - b.data<float>()[0];
      const float r = diff > 0.f ? float(diff) : 0.f;
      volatile float want = r + c.data<float>()[i];
      ASSERT_EQ(outs[0].data<float>()[i], float(diff)) << "r5 at " << i << " of " << n;
      ASSERT_EQ(outs[1].data<float>()[i], float(want)) << "r7 at " << i << " of " << n;
    }
  }
}

TEST(JitFusion, ThreadCountDoesNotChangeResults) {
  const int fused = dc::jit::fused_elementwise_op();
  const Shape shape = {37, 1000};
  Tensor x = filled(shape, 5), a = filled({1000}, 6), b = filled({1}, 7), c = filled(shape, 8);
  const int before = dc::get_num_threads();
  dc::set_num_threads(1);
  dc::jit::Stack s1 = program(x, a, b, c, shape);
  const tensor_list one = dc::jit::op_invoker(fused)(s1);
  dc::set_num_threads(std::max(2, before));
  dc::jit::Stack s2 = program(x, a, b, c, shape);
  const tensor_list many = dc::jit::op_invoker(fused)(s2);
  dc::set_num_threads(before);
  EXPECT_EQ(std::memcmp(one[1].data<float>(), many[1].data<float>(), 4 * x.numel()), 0);
}

TEST(JitGraph, ReplayDeadCodeAndMemoryPlan) {
  // %2 = fused(%0, %1) twice; the first result is dead, the second returned.
  const int fused = dc::jit::fused_elementwise_op();
  dc::jit::Graph g;
  g.num_inputs = 2;
  g.num_values = 4;
  g.value_shapes = {{6}, {6}, {6}, {6}};
  g.value_dtypes.assign(4, DType::Float32);
  g.value_requires_grad.assign(4, false);
  for (int out : {2, 3}) {
    dc::jit::Node n;
    n.op = fused;
    n.args = {tensor_list{Tensor(), Tensor()}, Shape{1, op(BinaryOp::add), 0, 1}, Shape{2},
              Shape{6}};
    n.refs = {{0, 0, 0}, {0, 1, 1}};
    n.outputs = {out};
    g.nodes.push_back(n);
  }
  g.outputs = {3};
  g.outputs_const = {Tensor()};
  dc::jit::eliminate_dead_code(g);
  ASSERT_EQ(g.nodes.size(), 1u);
  dc::jit::plan_memory(g);
  Tensor x = filled({6}, 9), y = filled({6}, 10);
  const tensor_list r = g.run({x, y});
  ASSERT_EQ(r.size(), 1u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r[0].data<float>()[i], x.data<float>()[i] + y.data<float>()[i]);
  EXPECT_NE(g.str().find("_fused_elementwise"), std::string::npos);
}

}  // namespace
