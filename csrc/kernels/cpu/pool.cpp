// Pooling kernels (see pool.h). Planes are independent: threads split the planes, and each
// output is reduced over its window in a fixed order, so results do not depend on the thread
// count.
#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/parallel.h"

namespace dc::cpu {
namespace {

int64_t plane_grain(const PoolWindows& p) {
  const int64_t per_plane = std::max<int64_t>(1, p.OH * p.OW * 4 + p.H * p.W);
  return std::max<int64_t>(1, kGrainSize / per_plane);
}

// Max over the window of output (oh, ow), torch's rules: the first maximum, but any NaN wins,
// the last one seen.
template <typename T>
inline void max_window(const PoolWindows& p, const T* xp, int64_t oh, int64_t ow, T* y,
                       int64_t* idx) {
  T best = -std::numeric_limits<T>::infinity();
  int64_t arg = -1;
  for (int64_t i = 0; i < p.hn[oh]; ++i) {
    const int64_t h = p.h0[oh] + i * p.dh;
    for (int64_t j = 0; j < p.wn[ow]; ++j) {
      const int64_t w = p.w0[ow] + j * p.dw;
      const T v = xp[h * p.W + w];
      if (v > best || std::isnan(v) || arg < 0) best = v, arg = h * p.W + w;
    }
  }
  *y = best;
  *idx = arg;
}

// The windows of a pool without padding or dilation: every window KH x KW, output (oh, ow)
// starting at input (oh * sh, ow * sw). Returns false for any other pool.
struct RegularWindows {
  int64_t KH, KW, sh, sw;
};
bool regular_windows(const PoolWindows& p, RegularWindows& r) {
  if (p.OH == 0 || p.OW == 0 || p.dh != 1 || p.dw != 1 || p.h0[0] != 0 || p.w0[0] != 0) return false;
  r.KH = p.hn[0], r.KW = p.wn[0];
  r.sh = p.OH > 1 ? p.h0[1] : 1, r.sw = p.OW > 1 ? p.w0[1] : 1;
  if (r.KH < 1 || r.KW < 1 || r.sh < 1 || r.sw < 1) return false;
  for (int64_t oh = 0; oh < p.OH; ++oh)
    if (p.hn[oh] != r.KH || p.h0[oh] != oh * r.sh) return false;
  for (int64_t ow = 0; ow < p.OW; ++ow)
    if (p.wn[ow] != r.KW || p.w0[ow] != ow * r.sw) return false;
  return true;
}

// One plane of a regular pool: a strict '>' scan (first maximum) with fixed loop bounds; a
// window that holds a NaN (rare) is redone by max_window.
template <typename T, int KH, int KW>
void max_plane_regular(const PoolWindows& p, const RegularWindows& r, const T* xp, T* yp,
                       int64_t* ip) {
  const int64_t kh_n = KH > 0 ? KH : r.KH, kw_n = KW > 0 ? KW : r.KW;
  for (int64_t oh = 0; oh < p.OH; ++oh)
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const int64_t base = oh * r.sh * p.W + ow * r.sw;
      T best = xp[base];
      int64_t arg = base;
      bool nan = best != best;
      for (int64_t i = 0; i < kh_n; ++i)
        for (int64_t j = 0; j < kw_n; ++j) {
          const int64_t at = base + i * p.W + j;
          const T v = xp[at];
          nan |= v != v;
          const bool gt = v > best;  // selects, not a branch: random data mispredicts half
          arg = gt ? at : arg;
          best = gt ? v : best;
        }
      if (nan) {
        max_window(p, xp, oh, ow, yp + oh * p.OW + ow, ip + oh * p.OW + ow);
      } else {
        yp[oh * p.OW + ow] = best;
        ip[oh * p.OW + ow] = arg;
      }
    }
}

template <typename T>
void max_impl(const PoolWindows& p, const T* x, T* y, int64_t* idx) {
  RegularWindows r;
  const bool regular = regular_windows(p, r);
  parallel_for(0, p.planes, plane_grain(p), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = x + pl * p.H * p.W;
      T* yp = y + pl * p.OH * p.OW;
      int64_t* ip = idx + pl * p.OH * p.OW;
      if (regular && r.KH == 2 && r.KW == 2) {
        max_plane_regular<T, 2, 2>(p, r, xp, yp, ip);
      } else if (regular) {
        max_plane_regular<T, 0, 0>(p, r, xp, yp, ip);
      } else {
        for (int64_t oh = 0; oh < p.OH; ++oh)
          for (int64_t ow = 0; ow < p.OW; ++ow)
            max_window(p, xp, oh, ow, yp + oh * p.OW + ow, ip + oh * p.OW + ow);
      }
    }
  });
}

template <typename T>
T inv_divisor(const PoolWindows& p, int64_t oh, int64_t ow) {
  return T(1) / T(p.divisor_override > 0 ? p.divisor_override : p.hdiv[oh] * p.wdiv[ow]);
}

template <typename T>
void avg_impl(const PoolWindows& p, const T* x, T* y) {
  parallel_for(0, p.planes, plane_grain(p), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = x + pl * p.H * p.W;
      T* yp = y + pl * p.OH * p.OW;
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          T acc = 0;
          for (int64_t i = 0; i < p.hn[oh]; ++i) {
            const T* row = xp + (p.h0[oh] + i * p.dh) * p.W + p.w0[ow];
            for (int64_t j = 0; j < p.wn[ow]; ++j) acc += row[j * p.dw];
          }
          yp[oh * p.OW + ow] = acc * inv_divisor<T>(p, oh, ow);
        }
    }
  });
}

template <typename T>
void avg_backward_impl(const PoolWindows& p, const T* gy, T* gx) {
  parallel_for(0, p.planes, plane_grain(p), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      T* gp = gx + pl * p.H * p.W;
      const T* yp = gy + pl * p.OH * p.OW;
      std::fill(gp, gp + p.H * p.W, T(0));
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const T g = yp[oh * p.OW + ow] * inv_divisor<T>(p, oh, ow);
          for (int64_t i = 0; i < p.hn[oh]; ++i) {
            T* row = gp + (p.h0[oh] + i * p.dh) * p.W + p.w0[ow];
            for (int64_t j = 0; j < p.wn[ow]; ++j) row[j * p.dw] += g;
          }
        }
    }
  });
}

}  // namespace

#define DC_POOL_DISPATCH(name, ...)                                               \
  if (dtype == DType::Float32) {                                                  \
    using T = float;                                                              \
    __VA_ARGS__;                                                                  \
  } else if (dtype == DType::Float64) {                                           \
    using T = double;                                                             \
    __VA_ARGS__;                                                                  \
  } else {                                                                        \
    DC_THROW(TypeError, "[" name "] expected float32 or float64, got ", dtype_name(dtype)); \
  }

void max_pool2d_forward(const PoolWindows& p, DType dtype, const void* x, void* y, int64_t* idx) {
  DC_POOL_DISPATCH("max_pool2d",
                   max_impl(p, static_cast<const T*>(x), static_cast<T*>(y), idx))
}

void avg_pool2d_forward(const PoolWindows& p, DType dtype, const void* x, void* y) {
  DC_POOL_DISPATCH("avg_pool2d", avg_impl(p, static_cast<const T*>(x), static_cast<T*>(y)))
}

void avg_pool2d_backward(const PoolWindows& p, DType dtype, const void* gy, void* gx) {
  DC_POOL_DISPATCH("avg_pool2d",
                   avg_backward_impl(p, static_cast<const T*>(gy), static_cast<T*>(gx)))
}

#undef DC_POOL_DISPATCH

}  // namespace dc::cpu
