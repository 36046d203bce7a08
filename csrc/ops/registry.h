#pragma once
// The op registry: one row per public op, registered next to the op's definition. Tests walk
// it so no op lacks a CPU kernel, a derivative (or an explicit "not differentiable"), or a test;
// it is also where a reader sees which ops have a CUDA kernel.
#include <initializer_list>
#include <vector>

namespace dc::ops {

enum class Grad { differentiable, not_differentiable };

struct OpInfo {
  const char* name;    // the Python name (deepcore.<name>, Tensor.<name> or F.<name>)
  const char* family;  // the csrc/ops/<family>.cpp that defines it
  Grad grad;
  bool cpu = true;
  bool cuda = false;
};

struct OpRegistrar {
  OpRegistrar(std::initializer_list<OpInfo> ops);
};

const std::vector<OpInfo>& op_registry();

}  // namespace dc::ops

#define DC_OPS_CONCAT_(a, b) a##b
#define DC_OPS_CONCAT(a, b) DC_OPS_CONCAT_(a, b)
// DC_REGISTER_OPS({"add", "elementwise", Grad::differentiable}, ...);
#define DC_REGISTER_OPS(...) \
  static const ::dc::ops::OpRegistrar DC_OPS_CONCAT(dc_op_registrar_, __LINE__)({__VA_ARGS__})
