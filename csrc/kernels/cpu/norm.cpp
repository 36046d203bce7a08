#include "kernels/cpu/norm.h"

#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/nn_rows.h"

namespace dc::cpu {

namespace {
// Rows per partial sum of dw/db: fixed, so the summation order never depends on threads.
constexpr int64_t kRowBlock = 32;
}  // namespace

void norm_forward_into(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                       const Tensor& w, const Tensor& b, int64_t N, double eps, bool rms) {
  const int64_t M = N ? x.numel() / N : 0;
  DC_DISPATCH_FLOAT(x.dtype(), rms ? "rms_norm" : "layer_norm", [&] {
    using T = scalar_t;
    const auto& f = nn_rows<T>();
    const T* xp = x.data<T>();
    const T* wp = w.defined() ? w.data<T>() : nullptr;
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    T* yp = y.data<T>();
    T* mp = mean.data<T>();
    T* rp = rstd.data<T>();
    parallel_for(0, M, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(N, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t r = lo; r < hi; ++r) {
                     f.moments(xp + r * N, N, T(eps), rms, mp + r, rp + r);
                     f.norm_apply(xp + r * N, mp[r], rp[r], wp, bp, yp + r * N, N);
                   }
                 });
  });
}

void norm_backward_into(const Tensor& gx, const Tensor& dw, const Tensor& db, const Tensor& g,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& w,
                        int64_t N, bool rms) {
  const int64_t M = N ? x.numel() / N : 0;
  DC_DISPATCH_FLOAT(x.dtype(), rms ? "rms_norm_backward" : "layer_norm_backward", [&] {
    using T = scalar_t;
    const auto& f = nn_rows<T>();
    const T* gp = g.data<T>();
    const T* xp = x.data<T>();
    const T* mp = mean.data<T>();
    const T* rp = rstd.data<T>();
    const T* wp = w.defined() ? w.data<T>() : nullptr;
    if (gx.defined()) {
      T* op = gx.data<T>();
      parallel_for(0, M, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(N, 1)),
                   [&](int64_t lo, int64_t hi) {
                     std::vector<T> work(wp ? N : 0);
                     for (int64_t r = lo; r < hi; ++r)
                       f.norm_backward(gp + r * N, xp + r * N, mp[r], rp[r], wp, op + r * N, N,
                                       !rms, work.data());
                   });
    }
    if (!dw.defined() && !db.defined()) return;
    const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
    std::vector<T> pw(dw.defined() ? blocks * N : 0, T(0)), pb(db.defined() ? blocks * N : 0, T(0));
    parallel_for(0, blocks, std::max<int64_t>(1, kGrainSize / (kRowBlock * std::max<int64_t>(N, 1))),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t k = lo; k < hi; ++k) {
                     T* dwk = dw.defined() ? pw.data() + k * N : nullptr;
                     T* dbk = db.defined() ? pb.data() + k * N : nullptr;
                     for (int64_t r = k * kRowBlock; r < std::min(M, (k + 1) * kRowBlock); ++r)
                       f.norm_param_grad(gp + r * N, xp + r * N, mp[r], rp[r], dwk, dbk, N);
                   }
                 });
    auto combine = [&](const std::vector<T>& part, const Tensor& out) {
      T* o = out.data<T>();
      std::fill(o, o + N, T(0));
      for (int64_t k = 0; k < blocks; ++k)
        for (int64_t c = 0; c < N; ++c) o[c] += part[k * N + c];
    };
    if (dw.defined()) combine(pw, dw);
    if (db.defined()) combine(pb, db);
  });
}

}  // namespace dc::cpu
