#include "core/parallel.h"

#include <omp.h>

#include "core/error.h"

namespace dc {

int get_num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  DC_CHECK(n >= 1, ValueError, "[set_num_threads] number of threads must be >= 1, got ", n);
  omp_set_num_threads(n);
}

bool in_parallel_region() { return omp_in_parallel(); }

namespace detail {
void parallel_for_impl(int64_t begin, int64_t end, int64_t grain,
                       void (*fn)(void*, int64_t, int64_t), void* ctx) {
  const int64_t n = end - begin;
  const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), max_chunks));
  // Exceptions cannot cross an OpenMP region: keep the first one and rethrow after.
  std::exception_ptr error;
#pragma omp parallel num_threads(nthreads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t b = begin + tid * chunk;
    const int64_t e = std::min(end, b + chunk);
    if (b < e) {
      try {
        fn(ctx, b, e);
      } catch (...) {
#pragma omp critical(dc_parallel_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}
void parallel_items_impl(int64_t begin, int64_t end, void (*fn)(void*, int64_t), void* ctx) {
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), end - begin));
  std::exception_ptr error;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
  for (int64_t i = begin; i < end; ++i) {
    try {
      fn(ctx, i);
    } catch (...) {
#pragma omp critical(dc_parallel_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}
}  // namespace detail

}  // namespace dc
