// Note [The fake device]
// A stand-in for a GPU on machines without one, for the tests of everything around the
// kernels: placement of results, copies between devices, autograd across them, modules,
// optimizers and checkpoints on the device. `_C._fake_cuda(True)` registers it as the cuda
// backend (Note [Device memory backends] in core/device_memory.h) and fills the cuda kernel
// table with the cpu kernels, each wrapped to see host views of its device tensors.
//
// The memory is host memory, but a Storage holds its address with bit 62 set: a pointer no
// x86-64 process can dereference. Code that reads a device tensor's values on the host instead
// of going through its device's kernels (what would crash or read garbage on a GPU) therefore
// faults here too, or, through Tensor::data, raises; only the wrappers below and the copy clear
// the bit, including the pointers inside the structures some kernels take (the optimizer lists,
// the recurrent steps).
#include <atomic>
#include <chrono>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/device_memory.h"
#include "dispatch/kernels.h"

namespace dc::dispatch {

namespace {

constexpr uintptr_t kTag = uintptr_t(1) << 62;

void* tag(void* p) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) | kTag); }
template <typename P>
P untag(P p) {
  const auto u = reinterpret_cast<uintptr_t>(p);
  return (u & kTag) ? reinterpret_cast<P>(u & ~kTag) : p;
}

std::atomic<int64_t> fake_allocated{0}, fake_peak{0};

std::shared_ptr<Storage> fake_allocate(size_t nbytes, Device d) {
  size_t bytes = ((nbytes + 63) / 64) * 64;
  void* p = alloc_block(bytes);
  DC_CHECK(p || bytes == 0, MemoryError, "[alloc] out of memory allocating ", nbytes,
           " bytes on ", d.str());
  const int64_t now = fake_allocated += static_cast<int64_t>(nbytes);
  for (int64_t peak = fake_peak.load(); now > peak && !fake_peak.compare_exchange_weak(peak, now);) {
  }
  auto s = std::make_shared<Storage>();
  s->owner = std::shared_ptr<void>(p, [bytes, nbytes](void* q) {
    free_block(q, bytes);
    fake_allocated -= static_cast<int64_t>(nbytes);
  });
  s->data = p ? tag(p) : nullptr;
  s->nbytes = nbytes;
  s->device = d;
  return s;
}

void fake_copy(void* dst, Device, const void* src, Device, size_t n, bool) {
  std::memcpy(untag(dst), untag(src), n);
}

// Streams and events (Note [Streams and events]): work on the fake device is done when the call
// returns, so every stream is idle and every recorded event complete. Streams are numbered
// round-robin in two pools of 32 as on a GPU; an event keeps the host clock at its record.
struct FakeEvent {
  std::chrono::steady_clock::time_point at;
};
FakeEvent& fake_event(int64_t e) { return *reinterpret_cast<FakeEvent*>(e); }

std::atomic<int64_t> fake_next_stream[2] = {{0}, {0}};

const DeviceStreams kFakeStreams = {
    [](int, int priority) -> int64_t {
      const int pool = priority < 0 ? 1 : 0;
      return 1 + pool * 32 + fake_next_stream[pool]++ % 32;
    },
    [](int, int64_t) {},
    [](int, int64_t) { return true; },
    [](int, bool, bool) -> int64_t { return reinterpret_cast<int64_t>(new FakeEvent); },
    [](int64_t e) { delete &fake_event(e); },
    [](int, int64_t e, int64_t) { fake_event(e).at = std::chrono::steady_clock::now(); },
    [](int64_t) { return true; },
    [](int64_t) {},
    [](int, int64_t, int64_t) {},
    [](int64_t a, int64_t b) {
      return std::chrono::duration<double, std::milli>(fake_event(b).at - fake_event(a).at)
          .count();
    },
    [](int, void*, int64_t) {},
};

// Pinned memory is ordinary host memory marked pinned: copies are synchronous here anyway.
std::shared_ptr<Storage> fake_allocate_pinned(size_t nbytes) {
  auto s = Storage::allocate(nbytes, Device{});
  s->pinned = true;
  return s;
}

const DeviceMemory kFakeMemory = {
    "fake CUDA (host memory)", [] { return 1; }, [] { return 0; }, fake_allocate, fake_copy,
    [](Device) {}, &kFakeStreams, fake_allocate_pinned, [](const Storage&, int64_t) {}};

// ---- the kernels: cpu kernels on host views --------------------------------------------------

Tensor host_arg(const Tensor& t) {
  if (!t.defined() || t.device().type != DeviceType::CUDA) return t;
  const auto& s = t.storage();
  auto host = Storage::wrap(untag(s->data), s->nbytes, s->owner, Device{});
  Tensor v = Tensor::make_view(host, t.sizes(), t.strides(), t.offset(), t.dtype());
  v.impl()->is_wrapped_number = t.impl()->is_wrapped_number;
  return v;
}
inline void* host_arg(void* p) { return untag(p); }
inline const void* host_arg(const void* p) { return untag(p); }
inline int64_t* host_arg(int64_t* p) { return untag(p); }
inline bool* host_arg(bool* p) { return untag(p); }
inline cpu::GemmEpilogue host_arg(const cpu::GemmEpilogue& e) {
  cpu::GemmEpilogue h = e;
  h.bias = untag(e.bias);
  return h;
}
std::vector<cpu::OptimTensor> host_arg(const std::vector<cpu::OptimTensor>& ts) {
  std::vector<cpu::OptimTensor> h = ts;
  for (auto& t : h) {
    t.param = untag(t.param);
    t.grad = untag(t.grad);
    for (auto& s : t.state) s = untag(s);
  }
  return h;
}
// ClassTargets holds references: the host views live in the same object.
struct HostTargets {
  explicit HostTargets(const cpu::ClassTargets& c)
      : target(host_arg(c.target)), weight(host_arg(c.weight)),
        ct{target, weight, c.ignore_index, c.smoothing} {}
  operator const cpu::ClassTargets&() const { return ct; }
  Tensor target, weight;
  cpu::ClassTargets ct;
};
inline HostTargets host_arg(const cpu::ClassTargets& c) { return HostTargets(c); }
// The recurrent steps carry their operands as raw pointers in a struct.
cpu::RnnStepForward host_arg(const cpu::RnnStepForward& s) {
  cpu::RnnStepForward h = s;
  h.gates = untag(s.gates), h.hg = untag(s.hg), h.bias_hn = untag(s.bias_hn);
  h.h_prev = untag(s.h_prev), h.c_prev = untag(s.c_prev), h.c = untag(s.c);
  h.aux = untag(s.aux), h.out = untag(s.out);
  return h;
}
cpu::RnnStepBackward host_arg(const cpu::RnnStepBackward& s) {
  cpu::RnnStepBackward h = s;
  h.gates = untag(s.gates), h.hg = untag(s.hg), h.h_prev = untag(s.h_prev);
  h.c_prev = untag(s.c_prev), h.c = untag(s.c), h.aux = untag(s.aux), h.d_out = untag(s.d_out);
  h.dc = untag(s.dc), h.dgates = untag(s.dgates), h.dhg = untag(s.dhg);
  h.d_h_prev = untag(s.d_h_prev);
  return h;
}
// Everything else (geometry, dtypes, numbers, host pointers) passes as it is.
template <typename T>
const T& host_arg(const T& v) {
  return v;
}

// A result tensor (nonzero's) goes back to the device.
Tensor to_fake(const Tensor& t, Device d) {
  DC_CHECK(t.is_contiguous(), RuntimeError, "[fake_cuda] a kernel returned a strided tensor");
  Tensor out = Tensor::empty(t.sizes(), t.dtype(), d);
  if (t.numel() > 0) std::memcpy(untag(out.data_ptr()), t.data_ptr(), t.numel() * t.itemsize());
  return out;
}

template <auto Member, typename Sig>
struct Wrap;
template <auto Member, typename R, typename... A>
struct Wrap<Member, R (*)(A...)> {
  static R call(A... a) {
    const Device d = current_device();
    const auto f = kernel_table(DeviceType::CPU).*Member;
    DeviceGuard on_cpu{Device{}};  // scratch tensors a cpu kernel makes go to the cpu
    if constexpr (std::is_same_v<R, Tensor>) return to_fake(f(host_arg(a)...), d);
    else return f(host_arg(a)...);
  }
};

KernelTable saved_cuda_table;

void fill_fake(KernelTable& t) {
  const KernelTable& cpu = kernel_table(DeviceType::CPU);
#define DC_FAKE_ENTRY(name, ret, args) \
  t.name = cpu.name ? &Wrap<&KernelTable::name, decltype(KernelTable::name)>::call : nullptr;
  DC_KERNELS(DC_FAKE_ENTRY)
#undef DC_FAKE_ENTRY
}

}  // namespace

bool fake_cuda_enabled() { return device_memory(DeviceType::CUDA) == &kFakeMemory; }

void set_fake_cuda(bool on) {
  if (on == fake_cuda_enabled()) return;
  KernelTable& table = kernel_table(DeviceType::CUDA);
  if (on) {
    DC_CHECK(!device_memory(DeviceType::CUDA), RuntimeError,
             "[fake_cuda] a real CUDA backend is loaded; the fake device replaces only a missing "
             "one");
    saved_cuda_table = table;
    fill_fake(table);
    register_device_memory(DeviceType::CUDA, &kFakeMemory);
  } else {
    register_device_memory(DeviceType::CUDA, nullptr);
    table = saved_cuda_table;
  }
}

std::pair<int64_t, int64_t> fake_cuda_allocated() {
  return {fake_allocated.load(), fake_peak.load()};
}
void reset_fake_cuda_peak() { fake_peak.store(fake_allocated.load()); }

}  // namespace dc::dispatch
