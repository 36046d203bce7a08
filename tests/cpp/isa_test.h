#pragma once
// A test fixture run once per ISA (generic, avx2, avx512): SetUp forces the kernels onto the
// parameter's ISA, skipping it when the CPU cannot run it; TearDown restores the detected one.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "kernels/cpu/isa.h"

namespace dc::test {

class IsaTest : public ::testing::TestWithParam<dc::cpu::Isa> {
 protected:
  void SetUp() override {
    try {
      dc::cpu::set_active_isa(GetParam());
    } catch (const dc::ValueError&) {
      GTEST_SKIP() << "this CPU cannot run " << dc::cpu::isa_name(GetParam());
    }
  }
  void TearDown() override { dc::cpu::set_active_isa(dc::cpu::detected_isa()); }
};

inline std::string isa_test_name(const ::testing::TestParamInfo<dc::cpu::Isa>& info) {
  return dc::cpu::isa_name(info.param);
}

}  // namespace dc::test

// Instantiates the TEST_P cases of SUITE (a subclass of IsaTest) for every ISA.
#define DC_INSTANTIATE_FOR_EVERY_ISA(SUITE)                                                   \
  INSTANTIATE_TEST_SUITE_P(Isa, SUITE,                                                        \
                           ::testing::Values(dc::cpu::Isa::generic, dc::cpu::Isa::avx2,       \
                                             dc::cpu::Isa::avx512),                           \
                           dc::test::isa_test_name)
