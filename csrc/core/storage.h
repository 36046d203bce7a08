#pragma once
// Storage: one allocation that many tensor views share. Memory owned elsewhere (a NumPy array,
// a DLPack capsule) is held through `owner`, whose deleter releases it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"

namespace dc {

// Raw blocks through the cache of Note [Large-block cache] (storage.cpp): 64-byte aligned and
// uninitialised. `bytes` (a multiple of 64) may come back larger: the block's real size, which
// free_block must be given. nullptr for 0 bytes or when memory is exhausted.
void* alloc_block(size_t& bytes);
void free_block(void* p, size_t bytes);

struct Storage {
  std::shared_ptr<void> owner;  // keeps `data` alive
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  bool pinned = false;  // page-locked host memory (Note [Device memory backends])
  // Bumped by every in-place write through any view of this storage. Autograd compares it
  // with the value saved at forward time (see Note [Saved tensor versions]).
  std::atomic<uint32_t> version{0};

  // 64-byte aligned, uninitialised. Throws MemoryError for impossible sizes. On the meta
  // device no memory is taken: `data` stays null and only the byte counts below move.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device = current_device());
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, std::shared_ptr<void> owner,
                                       Device device = Device());
};

// Bytes held by live meta storages, and the most held at once since the last reset: what a
// dry run on the meta device would have allocated (deepcore.utils.plan reads them).
struct MetaMemoryStats {
  size_t live = 0;
  size_t peak = 0;
};
MetaMemoryStats meta_memory_stats();
void reset_meta_peak();

}  // namespace dc
