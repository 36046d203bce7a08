#pragma once
// A grow-only, uninitialised, 64-byte aligned scratch buffer for kernels' packed operands. Kept
// thread_local by its users, so steady-state calls allocate nothing (OpenMP reuses its threads).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"

namespace dc {

class ScratchBuffer {
 public:
  // `owner` names the kernel in the out-of-memory error, e.g. "gemm".
  explicit ScratchBuffer(const char* owner) : owner_(owner) {}
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(ptr_); }

  // At least `count` elements of T, 64-byte aligned; the contents are unspecified.
  template <typename T>
  T* get(int64_t count) {
    const size_t need = (static_cast<size_t>(count > 0 ? count : 1) * sizeof(T) + 63) / 64 * 64;
    if (need > bytes_) {
      std::free(ptr_);
      ptr_ = std::aligned_alloc(64, need);
      bytes_ = ptr_ ? need : 0;
      DC_CHECK(ptr_, MemoryError, "[", owner_, "] cannot allocate a ", need, "-byte buffer");
    }
    return static_cast<T*>(ptr_);
  }

 private:
  const char* owner_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace dc
