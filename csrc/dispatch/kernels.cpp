#include "dispatch/kernels.h"

namespace dc::dispatch {

namespace {
KernelTable* make_tables() {
  static KernelTable tables[kNumDeviceTypes];
  cpu::fill_kernels(tables[static_cast<int>(DeviceType::CPU)]);
  fill_meta_kernels(tables[static_cast<int>(DeviceType::Meta)]);
  return tables;
}
}  // namespace

KernelTable& kernel_table(DeviceType type) {
  static KernelTable* const tables = make_tables();
  return tables[static_cast<int>(type)];
}

void register_backend(DeviceType type, void (*fill)(KernelTable&)) { fill(kernel_table(type)); }

void throw_missing_kernel(const char* kernel) {
  const Device d = current_device();
  if (d.type == DeviceType::CUDA)
    DC_THROW(NotImplementedError, "[", current_op_name(), "] no cuda kernel (", kernel,
             "): this build of deepcore has no CUDA backend");
  DC_THROW(NotImplementedError, "[", current_op_name(), "] has no ", d.str(), " kernel (", kernel,
           ")", d.is_meta() ? ": its result depends on the tensor values, which meta tensors do "
                              "not have" : "");
}

}  // namespace dc::dispatch
