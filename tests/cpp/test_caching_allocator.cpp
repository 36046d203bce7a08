// The caching device allocator's bookkeeping (Note [Caching device allocator]) on a fake
// backend: size classes, reuse within a stream only, blocks held back for other streams until
// their events complete, statistics, empty_cache and the out-of-memory error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>

#include "core/caching_allocator.h"
#include "core/error.h"

namespace {

using dc::CachingAllocator;

// Host memory standing in for a device with `capacity` bytes; events complete when told to.
struct FakeBackend : CachingAllocator::Backend {
  size_t capacity;
  size_t used = 0;
  int64_t next_event = 1;
  std::set<int64_t> live_events, done_events;
  explicit FakeBackend(size_t cap) : capacity(cap) {}
  void* raw_alloc(size_t bytes) override {
    if (used + bytes > capacity) return nullptr;
    used += bytes;
    return std::malloc(bytes);
  }
  void raw_free(void* p, size_t bytes) override {
    used -= bytes;
    std::free(p);
  }
  int64_t record_event(int64_t) override {
    live_events.insert(next_event);
    return next_event++;
  }
  bool event_done(int64_t e) override { return done_events.count(e) != 0; }
  void destroy_event(int64_t e) override { live_events.erase(e); }
};

constexpr size_t MiB = size_t(1) << 20;

TEST(CachingAllocator, SizeClasses) {
  EXPECT_EQ(CachingAllocator::round_size(0), 0u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(MiB - 1), MiB);
  EXPECT_EQ(CachingAllocator::round_size(MiB), 2 * MiB);
  EXPECT_EQ(CachingAllocator::round_size(2 * MiB + 1), 4 * MiB);
}

TEST(CachingAllocator, ReusesFreedBlocksOfTheSameClassOnTheSameStream) {
  FakeBackend be(64 * MiB);
  {
    CachingAllocator a(be);
    void* p = a.allocate(1000, 0);
    a.free(p);
    EXPECT_EQ(a.allocate(900, 0), p);  // same class (1024), same stream: the cached block
    EXPECT_EQ(a.stats().backend_allocs, 1);
    void* q = a.allocate(1000, 7);  // another stream: a new block
    EXPECT_NE(q, p);
    a.free(q);
    void* r = a.allocate(3000, 7);  // another class
    EXPECT_NE(r, q);
    EXPECT_EQ(a.stats().backend_allocs, 3);
    const auto s = a.stats();
    EXPECT_EQ(s.allocated, 1024u + 3072u);
    EXPECT_EQ(s.reserved, 1024u + 1024u + 3072u);
    EXPECT_EQ(s.cached, 1024u);
    a.free(p);
    a.free(r);
    EXPECT_EQ(a.stats().allocated, 0u);
    EXPECT_EQ(a.stats().max_allocated, 1024u + 3072u);  // p and r together
    a.empty_cache();
    EXPECT_EQ(a.stats().reserved, 0u);
    EXPECT_EQ(be.used, 0u);
  }
  EXPECT_EQ(be.used, 0u);
}

TEST(CachingAllocator, PeakTracksTheMostInUse) {
  FakeBackend be(64 * MiB);
  CachingAllocator a(be);
  void* p = a.allocate(3 * MiB, 0);  // 4 MiB
  void* q = a.allocate(MiB, 0);      // 2 MiB
  a.free(p);
  EXPECT_EQ(a.stats().max_allocated, 6 * MiB);
  EXPECT_EQ(a.stats().max_reserved, 6 * MiB);
  a.reset_peak();
  EXPECT_EQ(a.stats().max_allocated, 2 * MiB);
  EXPECT_EQ(a.stats().max_reserved, 6 * MiB);  // the freed 4 MiB block is still cached
  a.free(q);
}

TEST(CachingAllocator, BlocksUsedOnOtherStreamsWaitForTheirEvents) {
  FakeBackend be(64 * MiB);
  CachingAllocator a(be);
  void* p = a.allocate(4096, 1);
  a.record_stream(p, 2);
  a.record_stream(p, 3);
  a.record_stream(p, 1);  // its own stream: nothing to wait for
  a.free(p);
  ASSERT_EQ(be.live_events.size(), 2u);  // one event per other stream
  EXPECT_EQ(a.stats().cached, 0u);       // held back, not reusable yet
  void* q = a.allocate(4096, 1);
  EXPECT_NE(q, p);
  be.done_events.insert(*be.live_events.begin());
  void* r = a.allocate(4096, 1);  // one event still pending
  EXPECT_NE(r, p);
  be.done_events.insert(*be.live_events.rbegin());
  void* s = a.allocate(4096, 1);  // both done: back in stream 1's pool
  EXPECT_EQ(s, p);
  EXPECT_TRUE(be.live_events.empty());
  for (void* x : {q, r, s}) a.free(x);
}

TEST(CachingAllocator, OutOfMemoryEmptiesTheCacheThenSaysWhatItHolds) {
  FakeBackend be(8 * MiB);
  CachingAllocator a(be);
  void* p = a.allocate(3 * MiB, 0);  // 4 MiB
  void* q = a.allocate(3 * MiB, 5);  // 4 MiB: the device is full
  a.free(q);                         // cached on stream 5
  void* r = a.allocate(3 * MiB, 0);  // stream 0 cannot reuse it: the cache is emptied first
  EXPECT_NE(r, nullptr);
  EXPECT_EQ(a.stats().reserved, 8 * MiB);
  try {
    a.allocate(MiB, 0);
    FAIL() << "expected MemoryError";
  } catch (const dc::MemoryError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("2.00 MiB"), std::string::npos) << msg;  // asked (rounded)
    EXPECT_NE(msg.find("8.00 MiB already allocated"), std::string::npos) << msg;
  }
  a.free(p);
  a.free(r);
}

TEST(CachingAllocator, ForeignPointersAreAnError) {
  FakeBackend be(MiB);
  CachingAllocator a(be);
  int x = 0;
  EXPECT_THROW(a.free(&x), dc::RuntimeError);
  EXPECT_THROW(a.record_stream(&x, 1), dc::RuntimeError);
  a.free(nullptr);  // like free(nullptr)
  EXPECT_EQ(a.allocate(0, 0), nullptr);
}

}  // namespace
