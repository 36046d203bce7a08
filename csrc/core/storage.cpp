#include "core/storage.h"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "core/device_memory.h"
#include "core/error.h"

namespace dc {
namespace {

// Note [Large-block cache]
// A training step allocates the same large buffers (activations, their gradients) every
// iteration. glibc hands big freed blocks back to the kernel (munmap, or a trim of the heap
// top), so each new one costs a page fault and a kernel-side zero fill per 4 KB page: a fifth
// of a batch-norm forward + backward on a 2M-element activation. Blocks of at least
// kMinCachedBytes are therefore kept when their storage dies and handed to the next request
// they fit (best fit, at most 1/8 larger than asked), up to kMaxCachedBytes in total; beyond
// that they are freed. Blocks come back uninitialised, as from aligned_alloc.
constexpr size_t kMinCachedBytes = size_t(1) << 20;
constexpr size_t kMaxCachedBytes = size_t(256) << 20;
// Note [Huge pages for large blocks]
// Blocks of at least kHugeBytes start on a 2 MB boundary and their whole 2 MB pages are
// marked MADV_HUGEPAGE (the kernel's transparent huge pages are often "madvise" only): a
// streaming op over tens of MB otherwise takes a TLB miss every 4 KB and a page fault per
// 4 KB on first touch. An add of two 4M-element tensors went from 1.9-2.1 ms to 1.3-1.5 ms
// on one thread (bench/README.md). The tail past the last whole 2 MB keeps small pages, so
// no memory is added.
constexpr size_t kHugeBytes = size_t(2) << 20;

class BlockCache {
 public:
  void* take(size_t bytes, size_t& got) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(bytes);
    if (it == free_.end() || it->first > bytes + bytes / 8) return nullptr;
    got = it->first;
    void* p = it->second;
    cached_ -= it->first;
    free_.erase(it);
    return p;
  }
  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + bytes <= kMaxCachedBytes) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mu_;
  std::multimap<size_t, void*> free_;  // block size -> block
  size_t cached_ = 0;
};

// Never destroyed: storages may die during static destruction.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

}  // namespace

void* alloc_block(size_t& bytes) {
  if (bytes == 0) return nullptr;
  void* p = bytes >= kMinCachedBytes ? block_cache().take(bytes, bytes) : nullptr;
  if (p) return p;
  if (bytes < kHugeBytes) return std::aligned_alloc(64, bytes);
  // Note [Huge pages for large blocks]
  // posix_memalign: aligned_alloc wants the size a multiple of the alignment.
  if (posix_memalign(&p, kHugeBytes, bytes) != 0) return nullptr;
  madvise(p, bytes / kHugeBytes * kHugeBytes, MADV_HUGEPAGE);
  return p;
}

void free_block(void* p, size_t bytes) {
  if (!p) return;
  if (bytes >= kMinCachedBytes) block_cache().give(p, bytes);
  else std::free(p);
}

namespace {
// Meta storages are counted, not allocated. Dry runs happen on one thread at a time in
// practice, but the counters are atomic so concurrent ones stay correct (if mixed together).
std::atomic<size_t> meta_live{0}, meta_peak{0};

struct MetaBlock {
  size_t bytes;
  explicit MetaBlock(size_t n) : bytes(n) {
    const size_t now = meta_live.fetch_add(n) + n;
    size_t peak = meta_peak.load();
    while (now > peak && !meta_peak.compare_exchange_weak(peak, now)) {
    }
  }
  ~MetaBlock() { meta_live.fetch_sub(bytes); }
};
}  // namespace

MetaMemoryStats meta_memory_stats() { return {meta_live.load(), meta_peak.load()}; }
void reset_meta_peak() { meta_peak.store(meta_live.load()); }

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  if (device.type == DeviceType::Meta) {
    auto s = std::make_shared<Storage>();
    s->owner = std::make_shared<MetaBlock>(nbytes);
    s->nbytes = nbytes;
    s->device = device;
    return s;
  }
  if (device.type != DeviceType::CPU) {
    device = resolve_device(device, "[alloc]");
    return device_memory(device.type)->allocate(nbytes, device);
  }
  // Anything above 2^48 bytes cannot be real memory; refuse before asking the allocator.
  DC_CHECK(nbytes < (size_t(1) << 48), MemoryError, "[alloc] cannot allocate ", nbytes,
           " bytes: size is absurd");
  size_t alloc_bytes = ((nbytes + 63) / 64) * 64;
  void* p = alloc_block(alloc_bytes);
  DC_CHECK(p || alloc_bytes == 0, MemoryError, "[alloc] out of memory allocating ", nbytes,
           " bytes");
  auto s = std::make_shared<Storage>();
  s->owner = std::shared_ptr<void>(p, [alloc_bytes](void* q) { free_block(q, alloc_bytes); });
  s->data = p;
  s->nbytes = nbytes;
  s->device = device;
  return s;
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, std::shared_ptr<void> owner,
                                       Device device) {
  auto s = std::make_shared<Storage>();
  s->owner = std::move(owner);
  s->data = data;
  s->nbytes = nbytes;
  s->device = device;
  return s;
}

}  // namespace dc
