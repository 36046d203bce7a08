#include "core/dtype.h"

namespace dc {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    default: return "unknown";
  }
}

DType dtype_from_name(const std::string& name) {
  if (name == "bool") return DType::Bool;
  if (name == "int32" || name == "int") return DType::Int32;
  if (name == "int64" || name == "long") return DType::Int64;
  if (name == "float32" || name == "float") return DType::Float32;
  if (name == "float64" || name == "double") return DType::Float64;
  DC_THROW(TypeError, "[dtype] unknown dtype '", name, "'");
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  // bool < int32 < int64 < float32 < float64, which is exactly PyTorch's table for these types.
  return static_cast<int>(a) > static_cast<int>(b) ? a : b;
}

}  // namespace dc
