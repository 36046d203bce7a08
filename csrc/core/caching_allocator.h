#pragma once
// Note [Caching device allocator]
// Device memory is slow to get (cudaMalloc synchronises the device) and a training step asks
// for the same sizes every iteration, so the CUDA backend keeps freed blocks and hands them
// out again. This is its bookkeeping, written against a small Backend interface (raw
// allocation, and events that say when a stream's work has finished) so it runs and is tested
// on machines without a GPU; the CUDA backend supplies cudaMalloc/cudaFree/cudaEvent*.
//
// - Size classes: requests round up to 512 bytes below 1 MiB and to 2 MiB above, so blocks of
//   nearby sizes are interchangeable. Free blocks wait in pools keyed by (stream, size class).
// - Stream-ordered reuse: a block freed on stream s may be handed out again at once, but only
//   to work on s (kernels on one stream run in order, so the new user starts after the old one
//   ends). A block also used on other streams (record_stream) is held back on free until an
//   event recorded on each of those streams has completed, then returns to its stream's pool.
// - Statistics: allocated (bytes handed out and not yet freed, rounded sizes), its peak, and
//   reserved (everything taken from the backend, in use or cached). empty_cache returns the
//   cached blocks to the backend.
// - Out of memory: when the backend refuses, the cache is emptied and the request retried; if
//   it still fails, MemoryError says how much was asked for, allocated and cached.
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dc {

class CachingAllocator {
 public:
  using Stream = int64_t;  // an opaque stream handle (0: the default stream)
  using Event = int64_t;
  struct Backend {
    virtual ~Backend() = default;
    // nullptr when the memory is not there.
    virtual void* raw_alloc(size_t bytes) = 0;
    virtual void raw_free(void* p, size_t bytes) = 0;
    // An event recorded now on `s`, and whether it has completed.
    virtual Event record_event(Stream s) = 0;
    virtual bool event_done(Event e) = 0;
    virtual void destroy_event(Event e) = 0;
  };
  struct Stats {
    size_t allocated = 0;
    size_t max_allocated = 0;
    size_t reserved = 0;
    size_t max_reserved = 0;
    size_t cached = 0;        // reserved - allocated - held back for other streams
    int64_t backend_allocs = 0;  // raw allocations made (cache misses)
  };

  explicit CachingAllocator(Backend& backend, std::string device_name = "cuda");
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  static size_t round_size(size_t bytes);

  // A block of at least `bytes` (0 gives nullptr) for work on `stream`.
  void* allocate(size_t bytes, Stream stream);
  void free(void* p);
  // `p` is also used by work on `stream` (torch's Tensor.record_stream).
  void record_stream(void* p, Stream stream);
  // Returns every cached block to the backend (blocks in use or held back stay).
  void empty_cache();
  Stats stats() const;
  void reset_peak();

 private:
  struct Block {
    size_t size;  // rounded
    Stream stream;
    std::vector<Stream> other_streams;
  };
  struct Pending {
    void* p;
    std::vector<Event> events;
  };
  void* take_cached(size_t size, Stream stream);
  void process_pending();
  void release_cached();

  Backend& backend_;
  std::string device_;
  mutable std::mutex mu_;
  std::unordered_map<void*, Block> blocks_;  // every block taken from the backend
  std::map<std::pair<Stream, size_t>, std::vector<void*>> free_;  // (stream, size) -> blocks
  std::vector<Pending> pending_;  // freed, waiting on other streams' events
  Stats stats_;
};

}  // namespace dc
