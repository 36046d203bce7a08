#pragma once
// Threading: OpenMP loops with a grain size, so small tensors never pay for waking threads.
#include <algorithm>
#include <exception>
#include <cstdint>

namespace dc {

int get_num_threads();
void set_num_threads(int n);
// True inside a parallel region (nested parallel_for calls then run inline).
bool in_parallel_region();

// Below this many elements an elementwise loop runs on the calling thread.
constexpr int64_t kGrainSize = 32768;

namespace detail {
void parallel_for_impl(int64_t begin, int64_t end, int64_t grain, void (*fn)(void*, int64_t, int64_t),
                       void* ctx);
void parallel_items_impl(int64_t begin, int64_t end, void (*fn)(void*, int64_t), void* ctx);
}

// Calls f(chunk_begin, chunk_end) over [begin, end) split into at most get_num_threads()
// chunks of at least `grain` elements each.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  if (end <= begin) return;
  if (end - begin <= grain || get_num_threads() == 1 || in_parallel_region()) {
    f(begin, end);
    return;
  }
  detail::parallel_for_impl(
      begin, end, grain,
      [](void* ctx, int64_t b, int64_t e) { (*static_cast<const F*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// Calls f(i) for every i in [begin, end), handing items to threads one at a time as they
// free up (a dynamic schedule): for coarse items, so that a core slowed by other work on the
// machine does not leave the others waiting at the end. Runs inline when nested or with one
// thread.
template <typename F>
void parallel_items(int64_t begin, int64_t end, const F& f) {
  if (end <= begin) return;
  if (end - begin == 1 || get_num_threads() == 1 || in_parallel_region()) {
    for (int64_t i = begin; i < end; ++i) f(i);
    return;
  }
  detail::parallel_items_impl(
      begin, end, [](void* ctx, int64_t i) { (*static_cast<const F*>(ctx))(i); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace dc
