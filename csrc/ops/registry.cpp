#include "ops/registry.h"

namespace dc::ops {

namespace {
std::vector<OpInfo>& table() {
  static std::vector<OpInfo> t;
  return t;
}
}  // namespace

OpRegistrar::OpRegistrar(std::initializer_list<OpInfo> ops) {
  table().insert(table().end(), ops.begin(), ops.end());
}

const std::vector<OpInfo>& op_registry() { return table(); }

}  // namespace dc::ops
