// NCCL through dlopen (cuda/nccl.h). Compiled only; no GPU has run this yet (README, "Devices").
#include "cuda/nccl.h"

#include <dlfcn.h>

#include <cstring>

#include "core/error.h"
#include "cuda/runtime.h"

namespace dc::cuda::nccl {

namespace {

// The entry points deepcore calls, declared as nccl.h (NCCL 2.10 to 2.32) declares them; the
// toolkit deepcore builds with carries no NCCL headers. The enums are int-sized in the C ABI, and
// ncclUniqueId is a struct of 128 chars passed by value.
using Comm = void*;
using Result = int;
struct UniqueId {
  char internal[kUniqueIdBytes];
};
using GetVersionFn = Result (*)(int*);
using GetUniqueIdFn = Result (*)(UniqueId*);
using CommInitRankFn = Result (*)(Comm*, int, UniqueId, int);
using CommEndFn = Result (*)(Comm);
using ErrorStringFn = const char* (*)(Result);
using LastErrorFn = const char* (*)(Comm);
using AllReduceFn = Result (*)(const void*, void*, size_t, int, int, Comm, cudaStream_t);
using BroadcastFn = Result (*)(const void*, void*, size_t, int, int, Comm, cudaStream_t);
using ReduceFn = Result (*)(const void*, void*, size_t, int, int, int, Comm, cudaStream_t);
using AllGatherFn = Result (*)(const void*, void*, size_t, int, Comm, cudaStream_t);
using ReduceScatterFn = Result (*)(const void*, void*, size_t, int, int, Comm, cudaStream_t);
using SendFn = Result (*)(const void*, size_t, int, int, Comm, cudaStream_t);
using RecvFn = Result (*)(void*, size_t, int, int, Comm, cudaStream_t);

// ncclAvg and ncclBfloat16 arrived in NCCL 2.10.
constexpr int kMinVersion = 21000;

struct Entries {
  GetUniqueIdFn get_unique_id = nullptr;
  CommInitRankFn comm_init_rank = nullptr;
  CommEndFn comm_destroy = nullptr, comm_abort = nullptr;
  ErrorStringFn error_string = nullptr;
  LastErrorFn last_error = nullptr;  // NCCL 2.13 and later; optional
  AllReduceFn all_reduce = nullptr;
  BroadcastFn broadcast = nullptr;
  ReduceFn reduce = nullptr;
  AllGatherFn all_gather = nullptr;
  ReduceScatterFn reduce_scatter = nullptr;
  SendFn send = nullptr;
  RecvFn recv = nullptr;
};

struct NcclLib {
  std::mutex mu;
  bool looked = false;
  std::vector<std::string> paths;
  std::string where;
  int version = 0;
  Entries fn;  // all null until a library with every entry point loads
};

NcclLib& lib() {
  static auto* l = new NcclLib;  // never destroyed: communicators may be ended at exit
  return *l;
}

std::string version_text(int code) {
  // NCCL_VERSION_CODE is major*10000 + minor*100 + patch from 2.9 on, major*1000 + ... before.
  const bool wide = code >= 10000;
  const int major = wide ? code / 10000 : code / 1000;
  const int minor = wide ? code % 10000 / 100 : code % 1000 / 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(code % 100);
}

template <typename F>
bool resolve(void* h, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(h, name));
  return fn != nullptr;
}

// Resolves every entry point from `h` into `e` and reads the version; on failure says what was
// missing or too old.
bool bind(void* h, Entries& e, int& version, std::string& why) {
  GetVersionFn get_version = nullptr;
  const bool ok =
      resolve(h, "ncclGetVersion", get_version) && resolve(h, "ncclGetUniqueId", e.get_unique_id) &&
      resolve(h, "ncclCommInitRank", e.comm_init_rank) &&
      resolve(h, "ncclCommDestroy", e.comm_destroy) && resolve(h, "ncclCommAbort", e.comm_abort) &&
      resolve(h, "ncclGetErrorString", e.error_string) &&
      resolve(h, "ncclAllReduce", e.all_reduce) && resolve(h, "ncclBroadcast", e.broadcast) &&
      resolve(h, "ncclReduce", e.reduce) && resolve(h, "ncclAllGather", e.all_gather) &&
      resolve(h, "ncclReduceScatter", e.reduce_scatter) && resolve(h, "ncclSend", e.send) &&
      resolve(h, "ncclRecv", e.recv);
  if (!ok) {
    why = "lacks an entry point deepcore needs (ncclSend, ncclAllReduce, ...)";
    return false;
  }
  if (get_version(&version) != 0 || version < kMinVersion) {
    why = "is NCCL " + version_text(version) + "; deepcore needs NCCL " +
          version_text(kMinVersion) + " or newer (ncclAvg, bfloat16)";
    return false;
  }
  resolve(h, "ncclGetLastError", e.last_error);
  return true;
}

void load(NcclLib& l) {
  l.looked = true;
  std::vector<std::string> tries = l.paths;
  tries.push_back("libnccl.so.2");
  std::string why;
  l.where = open_library(tries, [&](void* h, std::string& reason) {
    Entries e;
    int v = 0;
    if (!bind(h, e, v, reason)) return false;
    l.fn = e;
    l.version = v;
    return true;
  }, why);
  if (l.where.empty()) l.where = "not found; tried:" + why;
}

NcclLib& loaded() {
  NcclLib& l = lib();
  std::lock_guard<std::mutex> lock(l.mu);
  if (!l.looked) load(l);
  return l;
}

const Entries& required(const char* what) {
  NcclLib& l = loaded();
  DC_CHECK(l.fn.all_reduce, RuntimeError, "[nccl] ", what,
           ": NCCL (libnccl.so.2) is not available: ", l.where);
  return l.fn;
}

std::string last_error(const Entries& fn, Comm c) {
  // ncclGetLastError ignores its argument in every NCCL so far; it may be null.
  const char* text = fn.last_error ? fn.last_error(c) : nullptr;
  return text && *text ? std::string(": ") + text : std::string();
}

}  // namespace

void set_search_paths(std::vector<std::string> paths) {
  NcclLib& l = lib();
  std::lock_guard<std::mutex> lock(l.mu);
  l.paths = std::move(paths);
}

bool available() { return loaded().fn.all_reduce != nullptr; }

std::string where() { return loaded().where; }

int version() { return loaded().version; }

DataType data_type(DType t) {
  switch (t) {
    case DType::Bool: return kUint8;
    case DType::Int32: return kInt32;
    case DType::Int64: return kInt64;
    case DType::Float32: return kFloat32;
    case DType::Float64: return kFloat64;
    case DType::BFloat16: return kBfloat16;
    case DType::Float16: return kFloat16;
    default: break;
  }
  DC_THROW(TypeError, "[nccl] NCCL has no type for dtype ", dtype_name(t));
}

std::string unique_id() {
  const Entries& fn = required("ncclGetUniqueId");
  UniqueId id{};
  const Result r = fn.get_unique_id(&id);
  DC_CHECK(r == 0, RuntimeError, "[nccl] ncclGetUniqueId failed: ", fn.error_string(r),
           last_error(fn, nullptr));
  return std::string(id.internal, kUniqueIdBytes);
}

Communicator::Communicator(const std::string& id, int nranks, int rank, int device)
    : device_(device), rank_(rank), nranks_(nranks) {
  const Entries& fn = required("ncclCommInitRank");
  DC_CHECK(id.size() == kUniqueIdBytes, ValueError, "[nccl] a unique id has ", kUniqueIdBytes,
           " bytes, got ", id.size());
  DC_CHECK(nranks >= 1 && rank >= 0 && rank < nranks, ValueError, "[nccl] rank ", rank,
           " is outside a communicator of ", nranks, " ranks");
  check_device(device);
  UniqueId uid{};
  std::memcpy(uid.internal, id.data(), kUniqueIdBytes);
  DeviceScope on(device);  // the communicator is bound to the current device
  Comm c = nullptr;
  const Result r = fn.comm_init_rank(&c, nranks, uid, rank);
  DC_CHECK(r == 0, RuntimeError, "[nccl] ncclCommInitRank (rank ", rank, " of ", nranks,
           ", cuda:", device, ") failed: ", fn.error_string(r), last_error(fn, nullptr));
  comm_ = c;
}

// A communicator nobody destroyed (its process group was not destroyed before the program
// ended) may have work queued that a failed peer will never complete: abort, which never waits.
Communicator::~Communicator() { abort(); }

void Communicator::destroy() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!comm_) return;
  DeviceScope on(device_);
  const Entries& fn = lib().fn;
  const Result r = fn.comm_destroy(comm_);
  comm_ = nullptr;  // freed or not, it is unusable now
  check(r, "ncclCommDestroy");
}

void Communicator::abort() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!comm_) return;
  DeviceScope on(device_);
  lib().fn.comm_abort(comm_);  // nothing to report: the communicator is being given up
  comm_ = nullptr;
}

void Communicator::check(int result, const char* what) const {
  if (result == 0) return;
  const Entries& fn = lib().fn;
  DC_THROW(RuntimeError, "[nccl] ", what, " (rank ", rank_, " of ", nranks_, ", cuda:", device_,
           ") failed: ", fn.error_string(result), last_error(fn, comm_));
}

// Every operation holds the mutex, checks that the communicator is open, and skips empty
// buffers: every rank passes the same count (the Python layer checks it), so every rank skips
// the same operations.
template <typename Call>
void Communicator::call(const char* what, size_t count, Call&& enqueue) {
  std::lock_guard<std::mutex> lock(mu_);
  DC_CHECK(comm_, RuntimeError, "[nccl] ", what, ": the communicator was destroyed");
  if (count == 0) return;
  DeviceScope on(device_);
  check(enqueue(lib().fn, static_cast<Comm>(comm_)), what);
}

void Communicator::all_reduce(const void* send, void* recv, size_t count, DataType type,
                              RedOp op, cudaStream_t stream) {
  call("ncclAllReduce", count, [&](const Entries& fn, Comm c) {
    return fn.all_reduce(send, recv, count, type, op, c, stream);
  });
}

void Communicator::broadcast(const void* send, void* recv, size_t count, DataType type, int root,
                             cudaStream_t stream) {
  call("ncclBroadcast", count, [&](const Entries& fn, Comm c) {
    return fn.broadcast(send, recv, count, type, root, c, stream);
  });
}

void Communicator::reduce(const void* send, void* recv, size_t count, DataType type, RedOp op,
                          int root, cudaStream_t stream) {
  call("ncclReduce", count, [&](const Entries& fn, Comm c) {
    return fn.reduce(send, recv, count, type, op, root, c, stream);
  });
}

void Communicator::all_gather(const void* send, void* recv, size_t count, DataType type,
                              cudaStream_t stream) {
  call("ncclAllGather", count, [&](const Entries& fn, Comm c) {
    return fn.all_gather(send, recv, count, type, c, stream);
  });
}

void Communicator::reduce_scatter(const void* send, void* recv, size_t count, DataType type,
                                  RedOp op, cudaStream_t stream) {
  call("ncclReduceScatter", count, [&](const Entries& fn, Comm c) {
    return fn.reduce_scatter(send, recv, count, type, op, c, stream);
  });
}

void Communicator::send(const void* buf, size_t count, DataType type, int peer,
                        cudaStream_t stream) {
  call("ncclSend", count, [&](const Entries& fn, Comm c) {
    return fn.send(buf, count, type, peer, c, stream);
  });
}

void Communicator::recv(void* buf, size_t count, DataType type, int peer, cudaStream_t stream) {
  call("ncclRecv", count, [&](const Entries& fn, Comm c) {
    return fn.recv(buf, count, type, peer, c, stream);
  });
}

}  // namespace dc::cuda::nccl
