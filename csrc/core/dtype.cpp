#include "core/dtype.h"

namespace dc {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::BFloat16: return "bfloat16";
    case DType::Float16: return "float16";
    default: return "unknown";
  }
}

DType dtype_from_name(const std::string& name) {
  if (name == "bool") return DType::Bool;
  if (name == "int32" || name == "int") return DType::Int32;
  if (name == "int64" || name == "long") return DType::Int64;
  if (name == "float32" || name == "float") return DType::Float32;
  if (name == "float64" || name == "double") return DType::Float64;
  if (name == "bfloat16") return DType::BFloat16;
  if (name == "float16" || name == "half") return DType::Float16;
  DC_THROW(TypeError, "[dtype] unknown dtype '", name, "'");
}

namespace {
// bool < int32 < int64 < {bfloat16, float16} < float32 < float64: PyTorch's lattice for these
// types. The two 16-bit floats are incomparable: together they give float32.
int rank(DType t) {
  switch (t) {
    case DType::Bool: return 0;
    case DType::Int32: return 1;
    case DType::Int64: return 2;
    case DType::BFloat16:
    case DType::Float16: return 3;
    case DType::Float32: return 4;
    default: return 5;
  }
}
}  // namespace

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  const int ra = rank(a), rb = rank(b);
  if (ra == rb) return DType::Float32;  // bfloat16 with float16
  return ra > rb ? a : b;
}

}  // namespace dc
