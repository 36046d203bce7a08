#include "core/caching_allocator.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace dc {

namespace {
constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;  // 2 MiB

std::string mib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

CachingAllocator::CachingAllocator(Backend& backend, std::string device_name)
    : backend_(backend), device_(std::move(device_name)) {}

CachingAllocator::~CachingAllocator() {
  // Blocks still in use belong to tensors that outlive the allocator (process exit); only the
  // cache goes back.
  std::lock_guard<std::mutex> lock(mu_);
  for (Pending& pd : pending_)
    for (Event e : pd.events) backend_.destroy_event(e);
  pending_.clear();
  release_cached();
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes == 0) return 0;
  const size_t r = bytes < kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + r - 1) / r * r;
}

void* CachingAllocator::take_cached(size_t size, Stream stream) {
  auto it = free_.find({stream, size});
  if (it == free_.end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  if (it->second.empty()) free_.erase(it);
  stats_.cached -= size;
  return p;
}

void CachingAllocator::process_pending() {
  for (size_t i = 0; i < pending_.size();) {
    Pending& pd = pending_[i];
    bool done = true;
    for (Event e : pd.events) done = done && backend_.event_done(e);
    if (!done) {
      ++i;
      continue;
    }
    for (Event e : pd.events) backend_.destroy_event(e);
    Block& b = blocks_.at(pd.p);
    b.other_streams.clear();
    free_[{b.stream, b.size}].push_back(pd.p);
    stats_.cached += b.size;
    pending_[i] = pending_.back();
    pending_.pop_back();
  }
}

void CachingAllocator::release_cached() {
  for (auto& [key, ptrs] : free_) {
    for (void* p : ptrs) {
      backend_.raw_free(p, key.second);
      blocks_.erase(p);
      stats_.reserved -= key.second;
      stats_.cached -= key.second;
    }
  }
  free_.clear();
}

void* CachingAllocator::allocate(size_t bytes, Stream stream) {
  if (bytes == 0) return nullptr;
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  process_pending();
  void* p = take_cached(size, stream);
  if (!p) {
    p = backend_.raw_alloc(size);
    if (!p) {
      // Give the cache back and try once more before reporting.
      release_cached();
      p = backend_.raw_alloc(size);
    }
    DC_CHECK(p != nullptr, MemoryError, "[", device_, "] out of memory: tried to allocate ",
             mib(size), " (", bytes, " bytes asked); ", mib(stats_.allocated),
             " already allocated, ", mib(stats_.reserved - stats_.allocated),
             " reserved but not allocated (held for other streams)");
    blocks_.emplace(p, Block{size, stream, {}});
    stats_.reserved += size;
    stats_.max_reserved = std::max(stats_.max_reserved, stats_.reserved);
    ++stats_.backend_allocs;
  } else {
    blocks_.at(p).stream = stream;
  }
  stats_.allocated += size;
  stats_.max_allocated = std::max(stats_.max_allocated, stats_.allocated);
  return p;
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocks_.find(p);
  DC_CHECK(it != blocks_.end(), RuntimeError, "[", device_,
           "] free of a pointer this allocator did not hand out");
  Block& b = it->second;
  stats_.allocated -= b.size;
  if (b.other_streams.empty()) {
    free_[{b.stream, b.size}].push_back(p);
    stats_.cached += b.size;
    return;
  }
  Pending pd{p, {}};
  for (Stream s : b.other_streams) pd.events.push_back(backend_.record_event(s));
  pending_.push_back(std::move(pd));
}

void CachingAllocator::record_stream(void* p, Stream stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocks_.find(p);
  DC_CHECK(it != blocks_.end(), RuntimeError, "[", device_,
           "] record_stream on a pointer this allocator did not hand out");
  Block& b = it->second;
  if (stream == b.stream) return;
  if (std::find(b.other_streams.begin(), b.other_streams.end(), stream) == b.other_streams.end())
    b.other_streams.push_back(stream);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  process_pending();
  release_cached();
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.max_allocated = stats_.allocated;
  stats_.max_reserved = stats_.reserved;
}

}  // namespace dc
