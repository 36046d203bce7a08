#pragma once
// The op registry: one row per op of csrc/ops/ops.schema, generated at build time by
// tools/gen_ops.py. Tests walk it so no op lacks a CPU kernel, a derivative (or an explicit
// "not differentiable"), or a test; it is also where a reader sees which ops have a CUDA kernel.
#include <vector>

namespace dc::ops {

enum class Grad { differentiable, not_differentiable };

struct OpInfo {
  const char* name;    // the Python name (deepcore.<name>, Tensor.<name> or F.<name>)
  const char* family;  // the csrc/ops/<family>.cpp that defines it
  Grad grad;
  bool cpu = true;
  bool cuda = false;
  const char* signature = "";  // PyTorch style: "add(TensorLike input, ...) -> Tensor"
  const char* variants = "";   // space-separated: function method inplace
  const char* binding = "";    // its name in deepcore._C; "" when written in Python
  bool generated = true;       // false: the binding is hand-written
  bool nn = false;             // a deepcore.nn.functional function, not a deepcore one
  const char* inplace_of = "";  // add_: "add", the op whose inplace variant it is
};

// Defined in the generated registry table (build/<dir>/generated/op_registry.cpp).
const std::vector<OpInfo>& op_registry();

}  // namespace dc::ops
