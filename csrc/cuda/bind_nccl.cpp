// NCCL for deepcore.distributed (built only with -DDEEPCORE_CUDA=ON): the library's search paths
// and state, unique ids, and `_NcclComm`, the communicator that distributed/_nccl.py drives
// (the fake device's stand-in there has the same methods). The operations take contiguous
// tensors on the communicator's device and a stream handle; the checks here only guard memory
// (the Python layer has checked the arguments and named the collective), so their messages
// name the NCCL call.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include "cuda/nccl.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

using cuda::nccl::Communicator;

// The device address of a contiguous tensor of `c`'s device, for NCCL.
void* buffer(const Communicator& c, const Tensor& t, const char* what) {
  DC_CHECK(t.device().type == DeviceType::CUDA && t.device().index == c.device(), ValueError,
           "[nccl] ", what, ": the tensor is on ", t.device().str(), ", the communicator on cuda:",
           c.device());
  DC_CHECK(t.is_contiguous(), ValueError, "[nccl] ", what, ": the tensor must be contiguous");
  return t.data_ptr();
}

// `send` and `recv` of one dtype, `recv` holding `ratio` times `send`'s elements (or `send` that
// many times recv's when ratio < 0): the operands of the collectives.
void check_pair(const Tensor& send, const Tensor& recv, int64_t ratio, const char* what) {
  DC_CHECK(send.dtype() == recv.dtype(), TypeError, "[nccl] ", what, ": send is ",
           dtype_name(send.dtype()), ", recv ", dtype_name(recv.dtype()));
  const bool ok = ratio > 0 ? recv.numel() == ratio * send.numel()
                            : send.numel() == -ratio * recv.numel();
  DC_CHECK(ok, ValueError, "[nccl] ", what, ": send has ", send.numel(), " elements, recv ",
           recv.numel());
}

size_t count(const Tensor& t) { return static_cast<size_t>(t.numel()); }
cudaStream_t as_stream(int64_t s) { return reinterpret_cast<cudaStream_t>(s); }
cuda::nccl::RedOp as_op(int op) {
  DC_CHECK(op >= 0 && op < cuda::nccl::kNumOps, ValueError, "[nccl] unknown reduction ", op);
  return static_cast<cuda::nccl::RedOp>(op);
}

void bind_nccl(py::module_& m) {
  m.def("_nccl_search_paths", &cuda::nccl::set_search_paths);
  // (loaded, where from or why not, NCCL_VERSION_CODE)
  m.def("_nccl_where", [] {
    return py::make_tuple(cuda::nccl::available(), cuda::nccl::where(), cuda::nccl::version());
  });
  m.def("_nccl_unique_id", [] { return py::bytes(cuda::nccl::unique_id()); });

  py::class_<Communicator>(m, "_NcclComm")
      .def(py::init([](const py::bytes& id, int nranks, int rank, int device) {
             std::string bytes = id;
             py::gil_scoped_release release;  // waits for every rank of the communicator
             return new Communicator(bytes, nranks, rank, device);
           }),
           py::arg("unique_id"), py::arg("nranks"), py::arg("rank"), py::arg("device"))
      .def_property_readonly("device", &Communicator::device)
      .def_property_readonly("rank", &Communicator::rank)
      .def_property_readonly("size", &Communicator::size)
      .def("all_reduce", [](Communicator& c, const Tensor& send, const Tensor& recv, int op,
                            int64_t stream) {
        check_pair(send, recv, 1, "ncclAllReduce");
        const void* s = buffer(c, send, "ncclAllReduce");
        void* r = buffer(c, recv, "ncclAllReduce");
        py::gil_scoped_release release;
        c.all_reduce(s, r, count(send), cuda::nccl::data_type(send.dtype()), as_op(op),
                     as_stream(stream));
      })
      .def("broadcast", [](Communicator& c, const Tensor& send, const Tensor& recv, int root,
                           int64_t stream) {
        check_pair(send, recv, 1, "ncclBroadcast");
        const void* s = buffer(c, send, "ncclBroadcast");
        void* r = buffer(c, recv, "ncclBroadcast");
        py::gil_scoped_release release;
        c.broadcast(s, r, count(send), cuda::nccl::data_type(send.dtype()), root,
                    as_stream(stream));
      })
      .def("reduce", [](Communicator& c, const Tensor& send, const Tensor& recv, int op, int root,
                        int64_t stream) {
        check_pair(send, recv, 1, "ncclReduce");
        const void* s = buffer(c, send, "ncclReduce");
        void* r = buffer(c, recv, "ncclReduce");
        py::gil_scoped_release release;
        c.reduce(s, r, count(send), cuda::nccl::data_type(send.dtype()), as_op(op), root,
                 as_stream(stream));
      })
      .def("all_gather", [](Communicator& c, const Tensor& send, const Tensor& recv,
                            int64_t stream) {
        check_pair(send, recv, c.size(), "ncclAllGather");
        const void* s = buffer(c, send, "ncclAllGather");
        void* r = buffer(c, recv, "ncclAllGather");
        py::gil_scoped_release release;
        c.all_gather(s, r, count(send), cuda::nccl::data_type(send.dtype()), as_stream(stream));
      })
      .def("reduce_scatter", [](Communicator& c, const Tensor& send, const Tensor& recv, int op,
                                int64_t stream) {
        check_pair(send, recv, -c.size(), "ncclReduceScatter");
        const void* s = buffer(c, send, "ncclReduceScatter");
        void* r = buffer(c, recv, "ncclReduceScatter");
        py::gil_scoped_release release;
        c.reduce_scatter(s, r, count(recv), cuda::nccl::data_type(send.dtype()), as_op(op),
                         as_stream(stream));
      })
      .def("send", [](Communicator& c, const Tensor& t, int peer, int64_t stream) {
        const void* p = buffer(c, t, "ncclSend");
        py::gil_scoped_release release;
        c.send(p, count(t), cuda::nccl::data_type(t.dtype()), peer, as_stream(stream));
      })
      .def("recv", [](Communicator& c, const Tensor& t, int peer, int64_t stream) {
        void* p = buffer(c, t, "ncclRecv");
        py::gil_scoped_release release;
        c.recv(p, count(t), cuda::nccl::data_type(t.dtype()), peer, as_stream(stream));
      })
      .def("destroy", [](Communicator& c) {
        py::gil_scoped_release release;  // waits for the work queued so far
        c.destroy();
      })
      .def("abort", &Communicator::abort);
}

const BindingRegistrar reg("nccl", bind_nccl);

}  // namespace
}  // namespace dc::py_bind
