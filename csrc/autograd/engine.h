#pragma once
// Reverse-mode execution of the recorded graph.
#include "autograd/node.h"

namespace dc::autograd {

// Tensor.backward(): accumulates into the .grad of every leaf reachable from `roots`.
// grad_outputs[i] may be undefined only for a root with one element (then it is 1).
void backward(const tensor_list& roots, const tensor_list& grad_outputs, bool retain_graph,
              bool create_graph, const tensor_list& inputs = {});

// Queues `fn` to run once the backward pass in progress on this thread has finished (torch's
// Variable._execution_engine.queue_callback; DistributedDataParallel waits for its gradient
// all-reduces there). Callbacks run in the order queued, and may queue more. RuntimeError
// outside a backward pass.
void queue_callback(std::function<void()> fn);

// autograd.grad(): returns d(roots)/d(inputs) without touching any .grad.
tensor_list grad(const tensor_list& roots, const tensor_list& grad_outputs,
                 const tensor_list& inputs, bool retain_graph, bool create_graph,
                 bool allow_unused);

}  // namespace dc::autograd
