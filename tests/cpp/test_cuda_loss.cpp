// The per-row math of the CUDA loss kernels (Note [CUDA loss rows] in kernels/cuda/loss_rows.h),
// run on the host the way the kernels run it: a row shared by a group of lanes, here threads
// meeting at a barrier for each all-reduce. Checked against naive double loops and against the
// cpu loss kernels (bit for bit where no sum's order differs: the target matrix and the
// gradient) at awkward class counts, with ignored rows, class weights, label smoothing and rows
// holding NaN or infinities; and the launch plan and the first_bad_target scan.
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/loss.h"
#include "kernels/cuda/loss_rows.h"

namespace dc::cuda_kernels {
namespace loss_test_math {
#include "kernels/cpu/vec/scalar_math.h"
}  // namespace loss_test_math

namespace {

using cpu::ClassTargets;

constexpr int64_t kIgnore = -100;
constexpr double kInf = std::numeric_limits<double>::infinity();

// The cpu loss kernels' exp (what the CUDA kernels pass as `exp`).
struct CpuExp {
  template <typename T>
  T operator()(T v) const { return loss_test_math::exp_any(v); }
};

struct IsaGuard {
  explicit IsaGuard(cpu::Isa isa) : prev(cpu::active_isa()) { cpu::set_active_isa(isa); }
  ~IsaGuard() { cpu::set_active_isa(prev); }
  cpu::Isa prev;
};

// ---- a group of lanes on host threads --------------------------------------------------------
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return gen_ != gen; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_, count_ = 0;
  uint64_t gen_ = 0;
};

// The group interface of loss_rows.h: lane k of `size`, all-reduces through a shared array.
struct HostGroup {
  int lane, size;
  Barrier* barrier;
  std::vector<double>* partial;

  template <typename T>
  T max(T v) {
    const std::vector<double>& p = publish(static_cast<double>(v));
    double m = p[0];
    for (int k = 1; k < size; ++k) m = max_skipping_nan(m, p[k]);
    barrier->wait();  // all have read before the next publish
    return static_cast<T>(m);
  }
  double sum(double v) {
    const std::vector<double>& p = publish(v);
    double s = 0;
    for (int k = 0; k < size; ++k) s += p[k];
    barrier->wait();
    return s;
  }

 private:
  const std::vector<double>& publish(double v) {
    (*partial)[lane] = v;
    barrier->wait();
    return *partial;
  }
};

// row(r, group) for every row r < M by a group of `lanes` threads (a block per row).
template <typename Row>
void run_group(int lanes, int64_t M, const Row& row) {
  Barrier barrier(lanes);
  std::vector<double> partial(lanes);
  std::vector<std::thread> threads;
  for (int k = 0; k < lanes; ++k)
    threads.emplace_back([&, k] {
      HostGroup g{k, lanes, &barrier, &partial};
      for (int64_t r = 0; r < M; ++r) row(r, g);
    });
  for (auto& t : threads) t.join();
}

// ---- inputs ----------------------------------------------------------------------------------
template <typename T>
Tensor random_tensor(const Shape& shape, uint32_t seed, double scale, double shift = 0) {
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(shift + nd(gen));
  return t;
}

// Targets of M rows: every fourth ignored, the rest spread over [0, C).
Tensor class_targets(int64_t M, int64_t C) {
  Tensor t = Tensor::empty({M}, DType::Int64);
  for (int64_t r = 0; r < M; ++r) t.data<int64_t>()[r] = r % 4 == 1 ? kIgnore : (r * 7 + 2) % C;
  return t;
}

// Rows 0..2 of x (when there are more than 4 rows) made special: a NaN, a +inf, all -inf.
template <typename T>
void add_special_rows(const Tensor& x, int64_t C) {
  T* p = x.data<T>();
  const T inf = std::numeric_limits<T>::infinity();
  p[0 * C + (C - 1)] = std::numeric_limits<T>::quiet_NaN();
  p[2 * C + C / 2] = inf;
  for (int64_t c = 0; c < C; ++c) p[3 * C + c] = -inf;
}

bool close(double got, double want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want));
}

template <typename T>
double tolerance() { return sizeof(T) == 4 ? 2e-5 : 1e-12; }

template <typename T>
uint64_t bits(T v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}

// Naive double logsumexp (NaN-skipping max as the cpu) and class loss of one row.
double naive_lse(const double* x, int64_t C) {
  double m = -kInf, s = 0;
  for (int64_t c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;
  for (int64_t c = 0; c < C; ++c) s += std::exp(x[c] - m);
  return m + std::log(s);
}

template <typename T>
std::vector<double> as_double(const Tensor& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = static_cast<double>(t.data<T>()[i]);
  return v;
}

// ---- class-index loss ------------------------------------------------------------------------
template <typename T>
void check_class_loss(int64_t C, bool weighted, double eps, bool logits, int lanes) {
  SCOPED_TRACE(::testing::Message() << (sizeof(T) == 4 ? "float" : "double") << " C=" << C
                                    << " weighted=" << weighted << " eps=" << eps
                                    << " logits=" << logits << " lanes=" << lanes);
  const int64_t M = 11;
  Tensor x = random_tensor<T>({M, C}, 11 + static_cast<uint32_t>(C), 3.0, logits ? 0.0 : -4.0);
  if (C > 1) add_special_rows<T>(x, C);
  Tensor target = class_targets(M, C);
  Tensor w = weighted ? random_tensor<T>({C}, 5, 0.3, 1.0) : Tensor();
  const ClassTargets ct{target, w, kIgnore, eps};

  // The kernels' way: loss_sums by one group, then the rows.
  double sums[2] = {-1, -1};
  const T* wp = weighted ? w.data<T>() : nullptr;
  run_group(lanes, 1, [&](int64_t, HostGroup& g) {
    loss_sums(wp, C, target.data<int64_t>(), M, kIgnore, g, sums);
  });
  Tensor loss = Tensor::empty({M}, x.dtype()), lse = Tensor::empty({M}, x.dtype());
  ClassLossRows<T> a{x.data<T>(), target.data<int64_t>(), wp, sums, loss.data<T>(),
                     logits ? lse.data<T>() : nullptr, C, kIgnore, static_cast<T>(eps)};
  run_group(lanes, M, [&](int64_t r, HostGroup& g) { class_loss_row(a, r, g, CpuExp{}); });

  // The cpu kernel.
  Tensor cpu_loss = Tensor::empty({M}, x.dtype()), cpu_lse = Tensor::empty({M}, x.dtype());
  const double cpu_divisor = cpu::class_loss_forward(cpu_loss, cpu_lse, x, ct, logits);

  // Naive double.
  const std::vector<double> xd = as_double<T>(x);
  std::vector<double> wd(C, 1.0);
  if (weighted) wd = as_double<T>(w);
  double wsum = 0, divisor = 0;
  for (int64_t c = 0; c < C; ++c) wsum += wd[c];
  EXPECT_TRUE(close(sums[0], wsum, 1e-12)) << sums[0] << " vs " << wsum;
  const double tol = tolerance<T>();
  for (int64_t r = 0; r < M; ++r) {
    const double* xr = xd.data() + r * C;
    const int64_t t = target.data<int64_t>()[r];
    const double l = logits ? naive_lse(xr, C) : 0.0;
    double want = 0;
    if (t != kIgnore) {
      divisor += wd[t];
      double smooth = 0;
      for (int64_t c = 0; c < C; ++c) smooth += wd[c] * (l - xr[c]);
      want = (1 - eps) * wd[t] * (l - xr[t]) + (eps != 0 ? eps / C * smooth : 0.0);
    }
    const double got = static_cast<double>(loss.data<T>()[r]);
    const double scale = 1.0 + std::fabs(l);  // loss = l - x: l's rounding shows up in it
    EXPECT_TRUE(close(got, want, tol * scale)) << "row " << r << ": " << got << " vs " << want;
    EXPECT_TRUE(close(got, static_cast<double>(cpu_loss.data<T>()[r]), tol * scale))
        << "row " << r << ": " << got << " vs cpu " << cpu_loss.data<T>()[r];
    if (logits) {
      const double gl = static_cast<double>(lse.data<T>()[r]);
      EXPECT_TRUE(close(gl, l, tol)) << "lse row " << r << ": " << gl << " vs " << l;
      EXPECT_TRUE(close(gl, static_cast<double>(cpu_lse.data<T>()[r]), tol)) << "lse row " << r;
    }
  }
  EXPECT_TRUE(close(sums[1], divisor, 1e-12)) << sums[1] << " vs " << divisor;
  EXPECT_TRUE(close(sums[1], cpu_divisor, 1e-12)) << sums[1] << " vs cpu " << cpu_divisor;
}

TEST(CudaLoss, ClassLossRowsMatchNaiveAndCpu) {
  for (int64_t C : {1, 3, 33, 1000})
    for (bool weighted : {false, true})
      for (double eps : {0.0, 0.2})
        for (bool logits : {true, false})
          for (int lanes : {1, 7, 32}) {
            check_class_loss<float>(C, weighted, eps, logits, lanes);
            check_class_loss<double>(C, weighted, eps, logits, lanes);
          }
}

TEST(CudaLoss, ClassLossRowsWithABlockOfLanes) {
  check_class_loss<double>(1000, true, 0.1, true, 256);
  check_class_loss<float>(3, false, 0.0, true, 256);  // most lanes hold no class
}

TEST(CudaLoss, EmptyRowsAndNoClasses) {
  // C = 0 (every target ignored): lse = -inf, loss 0, as on the cpu.
  const int64_t M = 3;
  Tensor x = Tensor::empty({M, 0}, DType::Float64);
  Tensor target = Tensor::empty({M}, DType::Int64);
  for (int64_t r = 0; r < M; ++r) target.data<int64_t>()[r] = kIgnore;
  double sums[2] = {-1, -1};
  run_group(4, 1, [&](int64_t, HostGroup& g) {
    loss_sums<double>(nullptr, 0, target.data<int64_t>(), M, kIgnore, g, sums);
  });
  EXPECT_EQ(sums[0], 0.0);
  EXPECT_EQ(sums[1], 0.0);
  std::vector<double> loss(M, 7.0), lse(M, 7.0);
  ClassLossRows<double> a{x.data<double>(), target.data<int64_t>(), nullptr, sums, loss.data(),
                          lse.data(), 0, kIgnore, 0.1};
  run_group(4, M, [&](int64_t r, HostGroup& g) { class_loss_row(a, r, g, CpuExp{}); });
  Tensor cpu_loss = Tensor::empty({M}, DType::Float64);
  Tensor cpu_lse = Tensor::empty({M}, DType::Float64);
  const Tensor none;
  cpu::class_loss_forward(cpu_loss, cpu_lse, x, ClassTargets{target, none, kIgnore, 0.1}, true);
  for (int64_t r = 0; r < M; ++r) {
    EXPECT_EQ(loss[r], 0.0);
    EXPECT_EQ(lse[r], -kInf);
    EXPECT_EQ(cpu_lse.data<double>()[r], -kInf);
  }
  // Without a target only sums[0] is written.
  double only_w[2] = {-1, -1};
  const std::vector<double> w = {0.5, 0.25, 2.0};
  run_group(2, 1, [&](int64_t, HostGroup& g) {
    loss_sums(w.data(), 3, static_cast<const int64_t*>(nullptr), 0, kIgnore, g, only_w);
  });
  EXPECT_EQ(only_w[0], 2.75);
  EXPECT_EQ(only_w[1], -1.0);
}

// ---- gradient and target matrix, bit for bit against the generic cpu kernels -----------------
template <typename T>
void check_elements(int64_t C, bool weighted, double eps, bool per_row_scale) {
  SCOPED_TRACE(::testing::Message() << (sizeof(T) == 4 ? "float" : "double") << " C=" << C
                                    << " weighted=" << weighted << " eps=" << eps
                                    << " per_row_scale=" << per_row_scale);
  IsaGuard generic(cpu::Isa::generic);  // the ISA whose exp the host's exp_any is
  const int64_t M = 9;
  Tensor x = random_tensor<T>({M, C}, 3 + static_cast<uint32_t>(C), 3.0);
  Tensor target = class_targets(M, C);
  Tensor w = weighted ? random_tensor<T>({C}, 9, 0.3, 1.0) : Tensor();
  const ClassTargets ct{target, w, kIgnore, eps};
  Tensor loss = Tensor::empty({M}, x.dtype()), lse = Tensor::empty({M}, x.dtype());
  cpu::class_loss_forward(loss, lse, x, ct, true);
  Tensor scale = random_tensor<T>(per_row_scale ? Shape{M} : Shape{}, 4, 0.5, 1.0);
  Tensor gx = Tensor::empty({M, C}, x.dtype()), B = Tensor::empty({M, C}, x.dtype());
  cpu::cross_entropy_backward_into(gx, x, lse, ct, scale);
  cpu::class_target_matrix_into(B, ct, C);

  ClassElements<T> k{target.data<int64_t>(), weighted ? w.data<T>() : nullptr, C, kIgnore,
                     static_cast<T>(eps), static_cast<T>(eps) / static_cast<T>(C)};
  T wsum = weighted ? T(0) : static_cast<T>(C);  // the cpu's weight_sum: in T, in order
  if (weighted)
    for (int64_t c = 0; c < C; ++c) wsum += w.data<T>()[c];
  for (int64_t i = 0; i < M * C; ++i) {
    const T g = cross_entropy_grad_element(k, x.data<T>(), lse.data<T>(), scale.data<T>(),
                                           per_row_scale ? 1 : 0, wsum, i, CpuExp{});
    ASSERT_EQ(bits(g), bits(gx.data<T>()[i])) << "gx[" << i << "] " << g << " vs cpu "
                                              << gx.data<T>()[i];
    const T b = class_target_element(k, i);
    ASSERT_EQ(bits(b), bits(B.data<T>()[i])) << "B[" << i << "] " << b << " vs cpu "
                                             << B.data<T>()[i];
  }
  // And the formula itself, in double: s * (A * softmax - B).
  const std::vector<double> xd = as_double<T>(x);
  for (int64_t r = 0; r < M; ++r) {
    const int64_t t = target.data<int64_t>()[r];
    const double l = naive_lse(xd.data() + r * C, C);
    const double s = static_cast<double>(scale.data<T>()[per_row_scale ? r : 0]);
    for (int64_t c = 0; c < C; ++c) {
      double want_b = 0, want_g = 0;
      if (t != kIgnore) {
        auto wat = [&](int64_t j) { return weighted ? static_cast<double>(w.data<T>()[j]) : 1.0; };
        double wtot = 0;
        for (int64_t j = 0; j < C; ++j) wtot += wat(j);
        want_b = (c == t ? (1 - eps) * wat(t) : 0.0) + eps / C * wat(c);
        const double A = (1 - eps) * wat(t) + eps / C * wtot;
        want_g = s * (A * std::exp(xd[r * C + c] - l) - want_b);
      }
      EXPECT_TRUE(close(B.data<T>()[r * C + c], want_b, tolerance<T>()));
      EXPECT_TRUE(close(gx.data<T>()[r * C + c], want_g, 4 * tolerance<T>()))
          << r << "," << c << ": " << gx.data<T>()[r * C + c] << " vs " << want_g;
    }
  }
}

TEST(CudaLoss, GradientAndTargetMatrixElementsMatchCpuBits) {
  for (int64_t C : {1, 3, 33, 1000})
    for (bool weighted : {false, true})
      for (double eps : {0.0, 0.3})
        for (bool per_row : {false, true}) {
          check_elements<float>(C, weighted, eps, per_row);
          check_elements<double>(C, weighted, eps, per_row);
        }
}

// ---- probability targets ---------------------------------------------------------------------
template <typename T>
void check_prob_loss(int64_t C, bool weighted, double eps, int lanes) {
  SCOPED_TRACE(::testing::Message() << (sizeof(T) == 4 ? "float" : "double") << " C=" << C
                                    << " weighted=" << weighted << " eps=" << eps
                                    << " lanes=" << lanes);
  const int64_t M = 7;
  Tensor x = random_tensor<T>({M, C}, 21 + static_cast<uint32_t>(C), 2.0);
  if (C > 1) add_special_rows<T>(x, C);
  Tensor t = Tensor::empty({M, C}, x.dtype());
  std::mt19937 gen(8);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int64_t r = 0; r < M; ++r) {
    double total = 0;
    std::vector<double> row(C);
    for (auto& v : row) total += (v = u(gen) < 0.3 ? 0.0 : u(gen));  // some exact zeros
    for (int64_t c = 0; c < C; ++c)
      t.data<T>()[r * C + c] = static_cast<T>(total > 0 ? row[c] / total : 1.0 / C);
  }
  Tensor w = weighted ? random_tensor<T>({C}, 6, 0.3, 1.0) : Tensor();

  Tensor loss = Tensor::empty({M}, x.dtype());
  ProbLossRows<T> a{x.data<T>(), t.data<T>(), weighted ? w.data<T>() : nullptr, loss.data<T>(),
                    C, T(1) - static_cast<T>(eps), static_cast<T>(eps) / static_cast<T>(C)};
  run_group(lanes, M, [&](int64_t r, HostGroup& g) { prob_loss_row(a, r, g, CpuExp{}); });
  Tensor cpu_loss = Tensor::empty({M}, x.dtype());
  cpu::prob_loss_forward(cpu_loss, x, t, w, eps);

  const std::vector<double> xd = as_double<T>(x), td = as_double<T>(t);
  for (int64_t r = 0; r < M; ++r) {
    const double l = naive_lse(xd.data() + r * C, C);
    double want = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double wc = weighted ? static_cast<double>(w.data<T>()[c]) : 1.0;
      want += (td[r * C + c] * (1 - eps) + eps / C) * wc * (l - xd[r * C + c]);
    }
    const double got = static_cast<double>(loss.data<T>()[r]);
    const double tol = tolerance<T>() * (1.0 + std::fabs(l));
    EXPECT_TRUE(close(got, want, tol)) << "row " << r << ": " << got << " vs " << want;
    EXPECT_TRUE(close(got, static_cast<double>(cpu_loss.data<T>()[r]), tol))
        << "row " << r << ": " << got << " vs cpu " << cpu_loss.data<T>()[r];
  }
}

TEST(CudaLoss, ProbLossRowsMatchNaiveAndCpu) {
  for (int64_t C : {1, 3, 33, 1000})
    for (bool weighted : {false, true})
      for (double eps : {0.0, 0.25})
        for (int lanes : {1, 5, 32}) {
          check_prob_loss<float>(C, weighted, eps, lanes);
          check_prob_loss<double>(C, weighted, eps, lanes);
        }
  check_prob_loss<double>(1000, true, 0.1, 256);
}

// ---- first_bad_target ------------------------------------------------------------------------
TEST(CudaLoss, FirstBadTargetIsTheMinimumOverThreads) {
  std::mt19937 gen(3);
  for (int64_t M : {0, 1, 5, 257, 3000}) {
    for (int trial = 0; trial < 6; ++trial) {
      const int64_t C = 1 + gen() % 40;
      Tensor target = Tensor::empty({M}, DType::Int64);
      for (int64_t r = 0; r < M; ++r)
        target.data<int64_t>()[r] = gen() % 3 == 0 ? kIgnore : static_cast<int64_t>(gen() % C);
      // trial 0: none bad; otherwise a few bad values (C, -1, huge) at random rows
      for (int b = 0; b < trial && M > 0; ++b)
        target.data<int64_t>()[gen() % M] = b % 3 == 0 ? C : (b % 3 == 1 ? -1 : INT64_MAX);
      const int64_t want = cpu::first_bad_target(target, C, kIgnore);
      for (int64_t threads : {1, 3, 32, 256, 5000}) {
        int64_t first = M;
        for (int64_t id = 0; id < threads; ++id)
          first = std::min(first, first_bad_in_stride(target.data<int64_t>(), M, C, kIgnore, id,
                                                      threads));
        EXPECT_EQ(first < M ? first : -1, want) << "M=" << M << " threads=" << threads;
      }
    }
  }
}

// ---- launch plan -----------------------------------------------------------------------------
TEST(CudaLoss, RowLaunchCoversEveryRowOnceWithUniformGroups) {
  for (int64_t M : {0, 1, 7, 8, 9, 100, 5000})
    for (int64_t C : {int64_t{1}, int64_t{33}, kBlockPerRowClasses, kBlockPerRowClasses + 1,
                       int64_t{50000}})
      for (int64_t cap : {1, 3, 132 * 32}) {
        const LossRowLaunch l = loss_row_launch(M, C, cap);
        if (M == 0) {
          EXPECT_EQ(l.blocks, 0);
          continue;
        }
        EXPECT_EQ(l.block_per_row(), C > kBlockPerRowClasses);
        EXPECT_EQ(l.row_threads, C > kBlockPerRowClasses ? l.threads : 32);
        EXPECT_GE(l.blocks, 1);
        EXPECT_LE(l.blocks, cap);
        EXPECT_EQ(l.threads % l.row_threads, 0);
        std::vector<int> seen(M, 0);
        for (int64_t b = 0; b < l.blocks; ++b)
          for (int tid = 0; tid < l.threads; tid += l.row_threads) {
            const RowStride rs = row_stride(b, l.blocks, tid, l.threads, l.row_threads);
            // every thread of the group walks the same rows
            for (int k = 1; k < l.row_threads; ++k) {
              const RowStride other = row_stride(b, l.blocks, tid + k, l.threads, l.row_threads);
              ASSERT_EQ(other.first, rs.first);
              ASSERT_EQ(other.step, rs.step);
            }
            for (int64_t r = rs.first; r < M; r += rs.step) ++seen[r];
          }
        for (int64_t r = 0; r < M; ++r) ASSERT_EQ(seen[r], 1) << "M=" << M << " C=" << C;
      }
}

}  // namespace
}  // namespace dc::cuda_kernels
