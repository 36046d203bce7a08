// The dispatcher (csrc/dispatch/): device resolution, the per-device kernel tables, the meta
// backend and the order in which slot keys see op calls.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "dispatch/dispatcher.h"
#include "dispatch/kernels.h"
#include "ops/ops.h"

namespace dc {
namespace {

Tensor meta_ones(const Shape& s) {
  DeviceGuard on(Device{DeviceType::Meta});
  return ops::ones(s, DType::Float32);
}

TEST(Dispatch, CpuTableHasEveryKernel) {
  const dispatch::KernelTable& t = dispatch::kernel_table(DeviceType::CPU);
#define DC_CHECK_ENTRY(name, ret, args) EXPECT_NE(t.name, nullptr) << #name;
  DC_KERNELS(DC_CHECK_ENTRY)
#undef DC_CHECK_ENTRY
}

TEST(Dispatch, CudaSlotIsEmptyWithoutTheBackend) {
  const dispatch::KernelTable& t = dispatch::kernel_table(DeviceType::CUDA);
#define DC_CHECK_EMPTY(name, ret, args) EXPECT_EQ(t.name, nullptr) << #name;
  DC_KERNELS(DC_CHECK_EMPTY)
#undef DC_CHECK_EMPTY
}

TEST(Dispatch, MetaOpsComputeShapesWithoutMemory) {
  const size_t live0 = meta_memory_stats().live;
  Tensor a = meta_ones({64, 32});
  Tensor b = meta_ones({32, 16});
  Tensor c = ops::relu(ops::add(ops::matmul(a, b), ops::wrap_scalar(1.0)));
  EXPECT_TRUE(c.is_meta());
  EXPECT_EQ(c.sizes(), (Shape{64, 16}));
  EXPECT_EQ(c.storage()->data, nullptr);
  EXPECT_GE(meta_memory_stats().live - live0, size_t(64 * 32 + 32 * 16 + 64 * 16) * 4);
  EXPECT_THROW(ops::nonzero(c), NotImplementedError);
  EXPECT_THROW(c.data<float>(), RuntimeError);
}

TEST(Dispatch, MixedDevicesAreAnErrorNamingBoth) {
  Tensor cpu = ops::ones({3}, DType::Float32);
  Tensor meta = meta_ones({3});
  try {
    ops::add(cpu, meta);
    FAIL() << "expected RuntimeError";
  } catch (const RuntimeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[add]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cpu and meta"), std::string::npos) << msg;
  }
  // A Python number (wrapped 0-d cpu tensor) goes with any device.
  EXPECT_TRUE(ops::mul(meta, ops::wrap_scalar(2.0)).is_meta());
}

TEST(Dispatch, CurrentDeviceIsRestoredAfterAnOp) {
  EXPECT_EQ(current_device().type, DeviceType::CPU);
  Tensor m = meta_ones({2});
  Tensor r = ops::exp(m);
  EXPECT_EQ(current_device().type, DeviceType::CPU);
  EXPECT_THROW(ops::add(m, ops::ones({2}, DType::Float32)), RuntimeError);
  EXPECT_EQ(current_device().type, DeviceType::CPU);  // restored on the error path too
}

std::vector<std::string>* trace_log = nullptr;
void trace_enter(dispatch::OpFrame& f) { trace_log->push_back(std::string("+") + f.op); }
void trace_exit(dispatch::OpFrame& f) { trace_log->push_back(std::string("-") + f.op); }

TEST(Dispatch, SlotKeysSeeNestedCallsInOrder) {
  // The Autocast key runs no handler (the bindings' precision step reads it: Note [Precision
  // policies]), so it cannot be switched on as a slot key.
  EXPECT_THROW(dispatch::set_key_active(dispatch::Key::Autocast, true), RuntimeError);
  // The Profiler slot with a logging handler (the profiler installs its own when it starts).
  std::vector<std::string> log;
  trace_log = &log;
  dispatch::set_key_handler(dispatch::Key::Profiler, {trace_enter, trace_exit});
  Tensor x = ops::ones({4}, DType::Float32);
  dispatch::set_key_active(dispatch::Key::Profiler, true);
  Tensor y = ops::selu(x);  // selu is elu with constants: elu nests inside it
  dispatch::set_key_active(dispatch::Key::Profiler, false);
  dispatch::set_key_handler(dispatch::Key::Profiler, {});
  trace_log = nullptr;
  ASSERT_GE(log.size(), 4u);
  EXPECT_EQ(log.front(), "+selu");
  EXPECT_EQ(log.back(), "-selu");
  EXPECT_EQ(log[1], "+elu");
  // Every enter has its exit, properly nested.
  std::vector<std::string> stack;
  for (const std::string& e : log) {
    if (e[0] == '+') {
      stack.push_back(e.substr(1));
    } else {
      ASSERT_FALSE(stack.empty());
      EXPECT_EQ(stack.back(), e.substr(1));
      stack.pop_back();
    }
  }
  EXPECT_TRUE(stack.empty());
}

TEST(Dispatch, GradModeIsTheAutogradKey) {
  EXPECT_TRUE(dispatch::key_active(dispatch::Key::Autograd));
  {
    autograd::GradModeGuard off(false);
    EXPECT_FALSE(dispatch::key_active(dispatch::Key::Autograd));
  }
  EXPECT_TRUE(dispatch::key_active(dispatch::Key::Autograd));
}

TEST(Dispatch, BackwardRunsOnTheForwardsDevice) {
  Tensor w = meta_ones({5, 3});
  w.autograd_meta().requires_grad = true;
  Tensor x = meta_ones({4, 3});
  Tensor loss = ops::sum(ops::linear(x, w, Tensor()), {}, false, std::nullopt);
  autograd::backward({loss}, {}, false, false, {});
  ASSERT_TRUE(w.grad().defined());
  EXPECT_TRUE(w.grad().is_meta());
  EXPECT_EQ(w.grad().sizes(), (Shape{5, 3}));
}

}  // namespace
}  // namespace dc
