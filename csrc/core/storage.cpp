#include "core/storage.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace dc {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  DC_CHECK(device.type == DeviceType::CPU, RuntimeError, "[alloc] device ", device.str(),
           " is not available in this build");
  // Anything above 2^48 bytes cannot be real memory; refuse before asking the allocator.
  DC_CHECK(nbytes < (size_t(1) << 48), MemoryError, "[alloc] cannot allocate ", nbytes,
           " bytes: size is absurd");
  const size_t alloc_bytes = ((nbytes + 63) / 64) * 64;
  void* p = alloc_bytes ? std::aligned_alloc(64, alloc_bytes) : nullptr;
  DC_CHECK(p || alloc_bytes == 0, MemoryError, "[alloc] out of memory allocating ", nbytes,
           " bytes");
  auto s = std::make_shared<Storage>();
  s->owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
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
