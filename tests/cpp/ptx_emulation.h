#pragma once
// The warp-level PTX instructions the tensor-core kernels use (gemm_tc.cu, attention_tc.cu), as
// the PTX ISA defines them, for the tests that emulate those kernels on the host through the
// fragment layouts of kernels/cuda/mma_layout.h.
#include <gtest/gtest.h>

#include <cstdint>

#include "kernels/cuda/mma_layout.h"

namespace dc::cuda_kernels::ptx_emulation {

// 16-bit half h (0: low) of a fragment register.
inline uint16_t half_of(uint32_t reg, int h) { return static_cast<uint16_t>(reg >> (16 * h)); }

// What each lane gives ldmatrix: offset(lane) for the 32 lanes.
struct LaneOffsets {
  int at[32];
};
template <typename F>
LaneOffsets lane_offsets(F offset) {
  LaneOffsets o;
  for (int lane = 0; lane < 32; ++lane) o.at[lane] = offset(lane);
  return o;
}

// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lanes 8j..8j+7 give the rows of matrix j;
// lane t receives in register j the elements (t / 4, 2 (t % 4)) and (t / 4, 2 (t % 4) + 1) of
// matrix j, or of its transpose with .trans, low half first.
inline void emulate_ldmatrix_x4(const uint16_t* smem, const int (&lane_offset)[32], bool trans,
                                uint32_t (&regs)[32][4]) {
  for (int j = 0; j < 4; ++j) {
    uint16_t m[8][8];
    for (int r = 0; r < 8; ++r) {
      ASSERT_EQ(lane_offset[8 * j + r] % 8, 0) << "ldmatrix row not on 16 bytes";
      for (int c = 0; c < 8; ++c) m[r][c] = smem[lane_offset[8 * j + r] + c];
    }
    for (int t = 0; t < 32; ++t) {
      const int r = t / 4, c = 2 * (t % 4);
      const uint16_t lo = trans ? m[c][r] : m[r][c];
      const uint16_t hi = trans ? m[c + 1][r] : m[r][c + 1];
      regs[t][j] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
  }
}

// mma.sync m16n8k16 with 16-bit inputs (to_float decodes them) and float accumulators:
// D = A B + C, each lane's registers placed by mma_layout.h's mma16_a / mma16_b / mma_c;
// acc(lane, i) is accumulator i of the lane, read as C and written as D. The products are summed
// in k order in float: the tests keep their data where that order does not matter, or bound it.
template <typename ToFloat, typename Acc>
void emulate_mma16(Acc&& acc, const uint32_t (&a)[32][4], const uint32_t (&b)[32][2],
                   ToFloat to_float) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) {
      const mma::Coord c = mma::mma16_a(lane, i);
      A[c.row][c.col] = to_float(half_of(a[lane][i / 2], i % 2));
    }
    for (int i = 0; i < 4; ++i) {
      const mma::Coord c = mma::mma16_b(lane, i);
      B[c.row][c.col] = to_float(half_of(b[lane][i / 2], i % 2));
    }
  }
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      const mma::Coord c = mma::mma_c(lane, i);
      float& d = acc(lane, i);
      float s = d;
      for (int k = 0; k < 16; ++k) s += A[c.row][k] * B[k][c.col];
      d = s;
    }
}

}  // namespace dc::cuda_kernels::ptx_emulation
