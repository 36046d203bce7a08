// The cpu backend: every kernel of the dispatcher's table (dispatch/kernels.h).
#include "dispatch/kernels.h"

namespace dc::cpu {

void fill_kernels(dispatch::KernelTable& t) {
#define DC_CPU_KERNEL(name, ret, args) t.name = &cpu::name;
  DC_KERNELS(DC_CPU_KERNEL)
#undef DC_CPU_KERNEL
}

}  // namespace dc::cpu
