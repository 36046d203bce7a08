// NumPy (shared memory both ways) and DLPack exchange.
#include <cstring>

#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

// DLPack ABI (v0.8 "dltensor" capsules), declared here from the published specification.
struct DLDevice { int32_t device_type; int32_t device_id; };
struct DLDataType { uint8_t code; uint8_t bits; uint16_t lanes; };
struct DLTensor {
  void* data; DLDevice device; int32_t ndim; DLDataType dtype;
  int64_t* shape; int64_t* strides; uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
enum : uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6 };
constexpr int32_t kDLCPU = 1;

struct DLPackContext {
  Tensor tensor;  // keeps the storage alive
  Shape shape, strides;
  DLManagedTensor managed;
};

DLDataType to_dl(DType d) {
  switch (d) {
    case DType::Bool: return {kDLBool, 8, 1};
    case DType::Int32: return {kDLInt, 32, 1};
    case DType::Int64: return {kDLInt, 64, 1};
    case DType::Float32: return {kDLFloat, 32, 1};
    case DType::Float16: return {kDLFloat, 16, 1};
    case DType::BFloat16: return {kDLBfloat, 16, 1};
    default: return {kDLFloat, 64, 1};
  }
}

DType from_dl(DLDataType t) {
  if (t.lanes == 1) {
    if (t.code == kDLBool && t.bits == 8) return DType::Bool;
    if (t.code == kDLUInt && t.bits == 8) return DType::Bool;
    if (t.code == kDLInt && t.bits == 32) return DType::Int32;
    if (t.code == kDLInt && t.bits == 64) return DType::Int64;
    if (t.code == kDLFloat && t.bits == 32) return DType::Float32;
    if (t.code == kDLFloat && t.bits == 64) return DType::Float64;
    if (t.code == kDLFloat && t.bits == 16) return DType::Float16;
    if (t.code == kDLBfloat && t.bits == 16) return DType::BFloat16;
  }
  DC_THROW(TypeError, "[from_dlpack] unsupported DLPack dtype (code ", int(t.code), ", bits ",
           int(t.bits), ", lanes ", t.lanes, ")");
}

py::capsule to_dlpack(const Tensor& t) {
  void* data = t.data<char>();  // checked: a meta tensor has nothing to share
  auto* ctx = new DLPackContext{t, t.sizes(), t.strides(), {}};
  DLTensor& dl = ctx->managed.dl_tensor;
  dl.data = data;
  dl.device = {kDLCPU, 0};
  dl.ndim = static_cast<int32_t>(t.dim());
  dl.dtype = to_dl(t.dtype());
  dl.shape = ctx->shape.data();
  dl.strides = ctx->strides.data();
  dl.byte_offset = 0;
  ctx->managed.manager_ctx = ctx;
  ctx->managed.deleter = [](DLManagedTensor* m) { delete static_cast<DLPackContext*>(m->manager_ctx); };
  // A consumer renames the capsule to "used_dltensor" and owns it; otherwise we free it.
  return py::capsule(&ctx->managed, "dltensor", [](PyObject* cap) {
    if (PyCapsule_IsValid(cap, "dltensor")) {
      auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
      if (m && m->deleter) m->deleter(m);
    }
  });
}

Tensor from_dlpack_capsule(py::capsule cap) {
  DC_CHECK(PyCapsule_IsValid(cap.ptr(), "dltensor"), ValueError,
           "[from_dlpack] expected an unconsumed 'dltensor' capsule");
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), "dltensor"));
  const DLTensor& dl = m->dl_tensor;
  DC_CHECK(dl.device.device_type == kDLCPU, ValueError,
           "[from_dlpack] only CPU tensors can be imported (device type ", dl.device.device_type, ")");
  const DType dt = from_dl(dl.dtype);
  Shape shape(dl.shape, dl.shape + dl.ndim);
  Shape strides = dl.strides ? Shape(dl.strides, dl.strides + dl.ndim) : contiguous_strides(shape);
  int64_t extent = 1;
  for (int i = 0; i < dl.ndim; ++i) {
    DC_CHECK(strides[i] >= 0, ValueError, "[from_dlpack] negative strides are not supported");
    if (shape[i] == 0) extent = 0;
  }
  if (extent) for (int i = 0; i < dl.ndim; ++i) extent += (shape[i] - 1) * strides[i];
  PyCapsule_SetName(cap.ptr(), "used_dltensor");
  std::shared_ptr<void> owner(m, [](void* p) {
    auto* mt = static_cast<DLManagedTensor*>(p);
    if (mt->deleter) mt->deleter(mt);
  });
  char* data = static_cast<char*>(dl.data) + dl.byte_offset;
  auto storage = Storage::wrap(data, static_cast<size_t>(extent) * itemsize(dt), owner);
  return Tensor::make_view(storage, shape, strides, 0, dt);
}

py::dtype numpy_dtype(DType d) {
  switch (d) {
    case DType::Bool: return py::dtype("bool");
    case DType::Int32: return py::dtype("int32");
    case DType::Int64: return py::dtype("int64");
    case DType::Float32: return py::dtype("float32");
    case DType::Float16: return py::dtype("float16");
    // NumPy has no bfloat16: ml_dtypes (a dependency) registers one, as JAX and TensorFlow use.
    case DType::BFloat16:
      return py::dtype::from_args(py::module_::import("ml_dtypes").attr("bfloat16"));
    default: return py::dtype("float64");
  }
}

}  // namespace

py::array tensor_to_numpy(const Tensor& t, bool force) {
  jit::on_value_read("numpy");
  DC_CHECK(t.device().type != DeviceType::CUDA, TypeError, "[numpy] can't convert a ",
           t.device().str(), " tensor of shape ", t.shape_str(), " to NumPy: copy it to host "
           "memory first with .cpu()");
  DC_CHECK(force || !t.requires_grad(), RuntimeError,
           "[numpy] can't call numpy() on a tensor that requires grad; use "
           "tensor.detach().numpy() instead");
  void* data = t.data<char>();  // checked: a meta tensor has nothing to share
  Shape byte_strides = t.strides();
  for (auto& s : byte_strides) s *= static_cast<int64_t>(t.itemsize());
  // The capsule keeps the storage alive as long as NumPy holds the array.
  auto* keep = new std::shared_ptr<Storage>(t.storage());
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<Storage>*>(p); });
  return py::array(numpy_dtype(t.dtype()), t.sizes(), byte_strides, data, base);
}

Tensor numpy_to_tensor(py::array arr) {
  const std::string kind(1, arr.dtype().kind());
  const auto isz = arr.itemsize();
  DType dt;
  if (kind == "b") dt = DType::Bool;
  else if (kind == "i" && isz == 4) dt = DType::Int32;
  else if (kind == "i" && isz == 8) dt = DType::Int64;
  else if (kind == "f" && isz == 4) dt = DType::Float32;
  else if (kind == "f" && isz == 8) dt = DType::Float64;
  else if (kind == "f" && isz == 2) dt = DType::Float16;
  else if (kind == "V" && isz == 2 && py::str(arr.dtype()).cast<std::string>() == "bfloat16")
    dt = DType::BFloat16;
  else
    DC_THROW(TypeError, "[from_numpy] can't convert a NumPy array of dtype ",
             py::str(arr.dtype()).cast<std::string>(),
             "; supported: bool, int32, int64, float32, float64, float16, bfloat16 (ml_dtypes)");
  DC_CHECK(arr.dtype().byteorder() != '>', TypeError, "[from_numpy] big-endian arrays are not supported");
  Shape shape(arr.shape(), arr.shape() + arr.ndim());
  Shape strides(arr.ndim());
  int64_t extent = 1;
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) {
    DC_CHECK(arr.strides()[i] >= 0, ValueError, "[from_numpy] at least one stride in the given "
             "NumPy array is negative; copy it first (np.ascontiguousarray)");
    DC_CHECK(arr.strides()[i] % isz == 0, ValueError, "[from_numpy] strides that are not a "
             "multiple of the element size are not supported");
    strides[i] = arr.strides()[i] / isz;
    if (shape[i] == 0) extent = 0;
  }
  if (extent) for (py::ssize_t i = 0; i < arr.ndim(); ++i) extent += (shape[i] - 1) * strides[i];
  auto owner = hold(arr);
  auto storage = Storage::wrap(const_cast<void*>(arr.data()), static_cast<size_t>(extent) * isz,
                               std::shared_ptr<void>(owner, owner.get()));
  return Tensor::make_view(storage, shape, strides, 0, dt);
}

void bind_interop(py::module_& m) {
  m.def("from_numpy", &numpy_to_tensor, py::arg("array"));
  m.def("_to_numpy", &tensor_to_numpy, py::arg("tensor"), py::arg("force") = false);
  m.def("_to_dlpack", &to_dlpack);
  m.def("_from_dlpack_capsule", &from_dlpack_capsule);
}

}  // namespace dc::py_bind
