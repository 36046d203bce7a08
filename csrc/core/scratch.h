#pragma once
// A grow-only, uninitialised, 64-byte aligned scratch buffer for kernels' packed operands. Kept
// thread_local by its users, so steady-state calls allocate nothing (OpenMP reuses its threads);
// a local one takes and returns its block through the large-block cache (core/storage.h).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/storage.h"

namespace dc {

class ScratchBuffer {
 public:
  // `owner` names the kernel in the out-of-memory error, e.g. "gemm".
  explicit ScratchBuffer(const char* owner) : owner_(owner) {}
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { free_block(ptr_, bytes_); }

  // At least `count` elements of T, 64-byte aligned; the contents are unspecified.
  template <typename T>
  T* get(int64_t count) {
    const size_t need = (static_cast<size_t>(count > 0 ? count : 1) * sizeof(T) + 63) / 64 * 64;
    if (need > bytes_) {
      free_block(ptr_, bytes_);
      size_t got = need;
      ptr_ = alloc_block(got);
      bytes_ = ptr_ ? got : 0;
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
