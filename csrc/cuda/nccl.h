#pragma once
// NCCL, loaded at run time (built only with -DDEEPCORE_CUDA=ON), for the collectives of
// deepcore.distributed on CUDA tensors (python/deepcore/distributed/_nccl.py). deepcore links no
// NCCL: libnccl.so.2 comes from the nvidia-nccl-cu13 wheel or the system, found on first use
// (dlopen), as cuBLAS is (cuda/cublas.h).
//
// A Communicator is one rank's end of an NCCL communicator on one device. Its operations queue
// their work on the stream they are given and return; the host does not wait for the data to
// move. deepcore.distributed calls them from one thread per process group (its worker, Note
// [Collectives on a worker thread] in distributed/_groups.py), so every rank queues them in
// program order; a mutex guards them all the same, since NCCL communicators are not
// thread-safe.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/dtype.h"

namespace dc::cuda::nccl {

// Paths to try before the plain soname (libnccl.so.2): the Python package passes $DEEPCORE_NCCL
// and the nvidia-nccl wheel's copy. Takes effect if NCCL has not been looked for yet.
void set_search_paths(std::vector<std::string> paths);
bool available();      // loads NCCL on the first call
std::string where();   // the path it was loaded from, or why it was not (every path tried)
int version();         // NCCL_VERSION_CODE of the loaded library (2.21.5: 22105); 0 without it

// ncclDataType_t and ncclRedOp_t values (nccl.h of NCCL 2.10 and later; the values are fixed).
enum DataType : int {
  kInt8 = 0, kUint8 = 1, kInt32 = 2, kInt64 = 4, kFloat16 = 6, kFloat32 = 7, kFloat64 = 8,
  kBfloat16 = 9
};
enum RedOp : int { kSum = 0, kProd = 1, kMax = 2, kMin = 3, kAvg = 4, kNumOps = 5 };

// The NCCL type of a deepcore dtype; bool travels as uint8 (reduced with max for "or" and min
// for "and", never summed: 1 + 1 would not stay a bool). Every deepcore dtype has one.
DataType data_type(DType t);

// The bytes of an ncclUniqueId (ncclGetUniqueId): rank 0 makes it, the others receive it.
constexpr size_t kUniqueIdBytes = 128;
std::string unique_id();

class Communicator {
 public:
  // ncclCommInitRank on `device`: returns once all `nranks` ranks have called it with the same
  // id. RuntimeError naming NCCL's error otherwise.
  Communicator(const std::string& id, int nranks, int rank, int device);
  ~Communicator();  // abort() unless destroy() or abort() ran
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int device() const { return device_; }
  int rank() const { return rank_; }
  int size() const { return nranks_; }

  // NCCL's operations on `count` elements of `type`, queued on `stream`; send == recv is in
  // place. all_gather and reduce_scatter count the elements of one rank's part. RuntimeError
  // naming NCCL's error, or once the communicator is destroyed.
  void all_reduce(const void* send, void* recv, size_t count, DataType type, RedOp op,
                  cudaStream_t stream);
  void broadcast(const void* send, void* recv, size_t count, DataType type, int root,
                 cudaStream_t stream);
  void reduce(const void* send, void* recv, size_t count, DataType type, RedOp op, int root,
              cudaStream_t stream);
  void all_gather(const void* send, void* recv, size_t count, DataType type,
                  cudaStream_t stream);
  void reduce_scatter(const void* send, void* recv, size_t count, DataType type, RedOp op,
                      cudaStream_t stream);
  void send(const void* buf, size_t count, DataType type, int peer, cudaStream_t stream);
  void recv(void* buf, size_t count, DataType type, int peer, cudaStream_t stream);

  // ncclCommDestroy: lets the work queued so far finish, then frees the communicator. Every
  // rank destroys its end (destroy_process_group).
  void destroy();
  // ncclCommAbort: ends the communicator at once, for a process group that a failure left
  // unusable, where queued work may never complete.
  void abort();

 private:
  template <typename Call>
  void call(const char* what, size_t count, Call&& enqueue);
  void check(int result, const char* what) const;

  void* comm_ = nullptr;  // ncclComm_t; null once destroyed or aborted
  int device_ = 0, rank_ = 0, nranks_ = 0;
  std::mutex mu_;
};

}  // namespace dc::cuda::nccl
