#include "cuda/cublas.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "cuda/runtime.h"

namespace dc::cuda::cublas {

namespace {

// The few entry points deepcore calls, declared as cublas_api.h declares them (the C ABI of
// cuBLAS 12 and 13); the toolkit deepcore builds with carries no cuBLAS headers.
using Handle = void*;
using Status = int;
using CreateFn = Status (*)(Handle*);
using SetStreamFn = Status (*)(Handle, cudaStream_t);
using StatusStringFn = const char* (*)(Status);
using GemmFn = Status (*)(Handle, int, int, int, int, int, const void*, const void*, cudaDataType,
                          int, long long, const void*, cudaDataType, int, long long, const void*,
                          void*, cudaDataType, int, long long, int, int, int);
constexpr int kOpN = 0, kOpT = 1, kGemmDefault = -1;

struct CublasLib {
  std::mutex mu;
  bool looked = false;
  std::vector<std::string> paths;
  std::string where;
  CreateFn create = nullptr;
  SetStreamFn set_stream = nullptr;
  StatusStringFn status_string = nullptr;
  GemmFn gemm = nullptr;
};

CublasLib& lib() {
  static auto* l = new CublasLib;  // never destroyed: handles may be used at exit
  return *l;
}

std::atomic<int> preferred_library{static_cast<int>(Library::cublas)};

void load(CublasLib& l) {
  l.looked = true;
  std::vector<std::string> tries = l.paths;
  tries.push_back("libcublas.so.13");
  tries.push_back("libcublas.so.12");
  std::string why;
  l.where = open_library(tries, [&](void* h, std::string& reason) {
    l.create = reinterpret_cast<CreateFn>(dlsym(h, "cublasCreate_v2"));
    l.set_stream = reinterpret_cast<SetStreamFn>(dlsym(h, "cublasSetStream_v2"));
    l.status_string = reinterpret_cast<StatusStringFn>(dlsym(h, "cublasGetStatusString"));
    l.gemm = reinterpret_cast<GemmFn>(dlsym(h, "cublasGemmStridedBatchedEx"));
    if (l.create && l.set_stream && l.gemm) return true;
    l.create = nullptr, l.set_stream = nullptr, l.gemm = nullptr;
    reason = "lacks cublasGemmStridedBatchedEx";
    return false;
  }, why);
  if (l.where.empty()) l.where = "not found; tried:" + why;
}

CublasLib& loaded() {
  CublasLib& l = lib();
  std::lock_guard<std::mutex> lock(l.mu);
  if (!l.looked) load(l);
  return l;
}

void check(Status s, const char* what) {
  if (s == 0) return;
  const CublasLib& l = lib();
  DC_THROW(RuntimeError, "[cuda] cuBLAS ", what, " failed: ",
           l.status_string ? l.status_string(s) : "status " + std::to_string(s));
}

// One handle per thread and device, as cuBLAS advises for multi-threaded use.
Handle handle() {
  CublasLib& l = loaded();
  int device = 0;
  cudaGetDevice(&device);
  thread_local std::unordered_map<int, Handle> handles;
  Handle& h = handles[device];
  if (!h) check(l.create(&h), "cublasCreate");
  return h;
}

}  // namespace

void set_search_paths(std::vector<std::string> paths) {
  CublasLib& l = lib();
  std::lock_guard<std::mutex> lock(l.mu);
  l.paths = std::move(paths);
}

bool available() { return loaded().gemm != nullptr; }

std::string where() { return loaded().where; }

void set_preferred(Library l) { preferred_library.store(static_cast<int>(l)); }
Library preferred() { return static_cast<Library>(preferred_library.load()); }

void gemm_strided_batched(cudaStream_t stream, bool trans_a, bool trans_b, int m, int n, int k,
                          const void* alpha, const void* A, cudaDataType a_type, int lda,
                          long long stride_a, const void* B, cudaDataType b_type, int ldb,
                          long long stride_b, const void* beta, void* C, cudaDataType c_type,
                          int ldc, long long stride_c, int batch, int compute) {
  CublasLib& l = loaded();
  DC_CHECK(l.gemm, RuntimeError, "[cuda] cuBLAS is not available: ", l.where);
  Handle h = handle();
  check(l.set_stream(h, stream), "cublasSetStream");
  check(l.gemm(h, trans_a ? kOpT : kOpN, trans_b ? kOpT : kOpN, m, n, k, alpha, A, a_type, lda,
               stride_a, B, b_type, ldb, stride_b, beta, C, c_type, ldc, stride_c, batch, compute,
               kGemmDefault),
        "cublasGemmStridedBatchedEx");
}

}  // namespace dc::cuda::cublas
