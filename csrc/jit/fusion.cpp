// Note [Elementwise fusion]
// A run of consecutive elementwise nodes over float32 values of one shape becomes one node,
// `_fused_elementwise`, that walks the output once in blocks of kBlock elements: each block
// runs the whole chain with its intermediates in small per-thread buffers (in L1), so the
// chain costs one pass over memory instead of one per op. The blocks call the same
// vectorised kernels the eager ops use (cpu::elementwise_table), so fused and eager results
// are bitwise equal.
//
// What fuses: unary rows of ops/pointwise.def, gelu (both forms), and add/sub (alpha 1), mul,
// div (no rounding mode), maximum, minimum, pow. Operands are values or constants that are
// either the full shape and contiguous, one element (a Python number: stride 0), or a
// contiguous suffix of the shape (a bias of shape (N,) against (M, N)). A suffix shorter than
// a block is tiled once per thread into a buffer of one block (blocks are a multiple of its
// length); a longer one is read in place, and blocks never cross a multiple of its length.
// Only nodes that autograd does not need are fused (their results do not require grad): the
// fused node has no derivative.
//
// The program is boxed into the node's arguments: (inputs, code, outputs, shape). `code`
// holds four int64 per instruction: kind (0 unary, 1 binary), kernel id, operand a,
// operand b; registers are the inputs, then one per instruction.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "core/parallel.h"
#include "jit/graph.h"
#include "kernels/cpu/elementwise.h"
#include "ops/ops.h"

namespace dc::jit {

namespace {

constexpr int64_t kBlock = 512;  // 2 KiB per buffer: a chain's buffers stay in L1

struct Kernel {
  int kind;  // 0 unary, 1 binary
  int id;
};

const std::unordered_map<std::string, Kernel>& kernels() {
  static const std::unordered_map<std::string, Kernel> m = [] {
    std::unordered_map<std::string, Kernel> k;
    for (int i = 0; i < static_cast<int>(cpu::UnaryOp::kCount); ++i)
      k[cpu::unary_op_name(static_cast<cpu::UnaryOp>(i))] = {0, i};
    for (int i = 0; i < static_cast<int>(cpu::BinaryOp::kCount); ++i)
      k[cpu::binary_op_name(static_cast<cpu::BinaryOp>(i))] = {1, i};
    return k;
  }();
  return m;
}

// The fused kernel for one node's op, or kind -1.
Kernel kernel_of(const Node& n) {
  const std::string name = op_name(n.op);
  auto scalar_is_one = [](const IValue& v) {
    const Scalar& s = std::get<Scalar>(v);
    return s.to_double() == 1.0;
  };
  if (name == "gelu") {
    const auto& mode = std::get<std::string>(n.args[1]);
    const char* k = mode == "tanh" ? "gelu_tanh" : mode == "none" ? "gelu_erf" : nullptr;
    if (!k) return {-1, 0};
    return kernels().at(k);
  }
  if (name == "add" || name == "sub") {
    if (n.args.size() != 3 || !scalar_is_one(n.args[2])) return {-1, 0};
  } else if (name == "div") {
    if (std::get<std::optional<std::string>>(n.args[2]).has_value()) return {-1, 0};
  } else if (name != "mul" && name != "maximum" && name != "minimum" && name != "pow") {
    auto it = kernels().find(name);
    if (it == kernels().end() || it->second.kind != 0 || n.args.size() != 1) return {-1, 0};
    return it->second;
  }
  return kernels().at(name);
}

// An operand the fused loop can read: float32, and one element or a suffix of the output's
// shape (leading 1s aside). Returns its length (its period along the flat output), or -1.
int64_t operand_period(const Shape& s, DType d, const Shape& out) {
  if (d != DType::Float32) return -1;
  const int64_t n = numel_of(s);
  if (n == 1) return 1;
  size_t lead = 0;
  while (lead < s.size() && s[lead] == 1) ++lead;
  const size_t k = s.size() - lead;
  if (k > out.size()) return -1;
  for (size_t i = 0; i < k; ++i)
    if (s[lead + i] != out[out.size() - k + i]) return -1;
  return n;
}

}  // namespace

void fuse_elementwise(Graph& g, bool fault) {
  const int fused_op = fused_elementwise_op();
  std::vector<std::vector<int>> readers(g.num_values);
  for (int k = 0; k < static_cast<int>(g.nodes.size()); ++k)
    for (const Ref& r : g.nodes[k].refs) readers[r.value].push_back(k);
  std::vector<bool> returned(g.num_values, false);
  for (int o : g.outputs)
    if (o >= 0) returned[o] = true;

  // Whether node k can join a group producing `shape`; its kernel.
  auto fusable = [&](int k, const Shape& shape, Kernel& kern) {
    const Node& n = g.nodes[k];
    if (n.outputs.size() != 1 || n.outputs[0] < 0) return false;
    const int v = n.outputs[0];
    if (g.value_dtypes[v] != DType::Float32 || g.value_requires_grad[v]) return false;
    if (g.value_shapes[v] != shape) return false;
    kern = kernel_of(n);
    if (kern.kind < 0) return false;
    const int arity = kern.kind == 0 ? 1 : 2;
    for (int i = 0; i < arity; ++i) {
      bool bound = false;
      for (const Ref& r : n.refs)
        if (r.arg == i) {
          bound = true;
          if (operand_period(g.value_shapes[r.value], g.value_dtypes[r.value], shape) < 0)
            return false;
        }
      if (!bound) {
        const Tensor& c = std::get<Tensor>(n.args[i]);
        if (!c.defined() || c.device().type != DeviceType::CPU) return false;
        // Python numbers join as float32 scalars; other constants must already be float32.
        if (!(c.impl()->is_wrapped_number && c.numel() == 1) &&
            (operand_period(c.sizes(), c.dtype(), shape) < 0 || !c.is_contiguous()))
          return false;
      }
    }
    return true;
  };

  std::vector<Node> out;
  size_t k = 0;
  while (k < g.nodes.size()) {
    Kernel kern;
    const Node& first = g.nodes[k];
    if (first.outputs.size() != 1 || first.outputs[0] < 0 ||
        !fusable(static_cast<int>(k), g.value_shapes[first.outputs[0]], kern)) {
      out.push_back(std::move(g.nodes[k++]));
      continue;
    }
    const Shape shape = g.value_shapes[first.outputs[0]];
    size_t end = k + 1;
    Kernel tmp;
    while (end < g.nodes.size() && fusable(static_cast<int>(end), shape, tmp)) ++end;
    if (end - k < 2) {
      out.push_back(std::move(g.nodes[k++]));
      continue;
    }
    // Build the program.
    tensor_list inputs;
    std::vector<Ref> refs;
    std::unordered_map<int, int> reg_of_value;  // graph value -> register
    std::unordered_map<const TensorImpl*, int> reg_of_const;
    std::vector<std::pair<int, int>> produced;  // (value, instruction index)
    Shape code;
    const int first_temp_marker = 1 << 20;  // instruction registers are numbered from here
    auto operand = [&](const Node& n, int i) -> int64_t {
      for (const Ref& r : n.refs)
        if (r.arg == i) {
          auto it = reg_of_value.find(r.value);
          if (it != reg_of_value.end()) return it->second;
          const int reg = static_cast<int>(inputs.size());
          inputs.push_back(Tensor());
          refs.push_back({0, reg, r.value});
          reg_of_value[r.value] = reg;
          return reg;
        }
      Tensor c = std::get<Tensor>(n.args[i]);
      auto it = reg_of_const.find(c.impl());
      if (it != reg_of_const.end()) return it->second;
      if (c.dtype() != DType::Float32) c = ops::to_dtype(c, DType::Float32);
      const int reg = static_cast<int>(inputs.size());
      reg_of_const[std::get<Tensor>(n.args[i]).impl()] = reg;
      inputs.push_back(c);
      return reg;
    };
    std::vector<Kernel> kerns;
    for (size_t j = k; j < end; ++j) {
      const Node& n = g.nodes[j];
      Kernel kk;
      fusable(static_cast<int>(j), shape, kk);
      // Test builds: a deliberately wrong fusion.
      if (fault && kk.kind == 1 && kk.id == static_cast<int>(cpu::BinaryOp::mul))
        kk.id = static_cast<int>(cpu::BinaryOp::add);
      const int64_t a = operand(n, 0);
      const int64_t b = kk.kind == 1 ? operand(n, 1) : 0;
      code.insert(code.end(), {kk.kind, kk.id, a, b});
      const int instr = static_cast<int>(kerns.size());
      kerns.push_back(kk);
      reg_of_value[n.outputs[0]] = first_temp_marker + instr;
      produced.push_back({n.outputs[0], instr});
    }
    // Registers of the instructions follow the inputs.
    const int64_t nin = static_cast<int64_t>(inputs.size());
    for (size_t c = 0; c < code.size(); c += 4) {
      for (size_t o = 2; o < 4; ++o)
        if (code[c + o] >= first_temp_marker) code[c + o] = nin + (code[c + o] - first_temp_marker);
    }
    // Results read outside the group, or returned.
    Shape out_regs;
    Node fused;
    fused.op = fused_op;
    fused.grad_mode = false;
    for (auto [v, instr] : produced) {
      bool outside = returned[v];
      for (int r : readers[v])
        if (r < static_cast<int>(k) || r >= static_cast<int>(end)) outside = true;
      if (!outside) continue;
      out_regs.push_back(nin + instr);
      fused.outputs.push_back(v);
    }
    fused.args = {inputs, code, out_regs, shape};
    fused.refs = refs;
    std::string where;
    for (size_t j = k; j < end; ++j)
      where += (j > k ? "," : "") + std::string(op_name(g.nodes[j].op));
    fused.where = "fused: " + where;
    out.push_back(std::move(fused));
    k = end;
  }
  g.nodes = std::move(out);
}

namespace {

tensor_list invoke_fused(Stack& s) {
  tensor_list inputs = std::get<tensor_list>(s[0]);
  const Shape& code = std::get<Shape>(s[1]);
  const Shape& out_regs = std::get<Shape>(s[2]);
  const Shape& shape = std::get<Shape>(s[3]);
  const int64_t total = numel_of(shape);
  const int nin = static_cast<int>(inputs.size());
  const int ninstr = static_cast<int>(code.size() / 4);
  // Operands: pointer and period (1: a scalar read with stride 0; total: the full shape).
  std::vector<const float*> in_ptr(nin);
  std::vector<int64_t> period(nin);
  int64_t small = 1, large = total;  // the longest period below kBlock, the shortest above
  for (int i = 0; i < nin; ++i) {
    Tensor& t = inputs[i];
    DC_CHECK(t.device().type == DeviceType::CPU, RuntimeError,
             "[jit] fused elementwise kernels run on the cpu, got a tensor on ",
             t.device().str());
    if (t.dtype() != DType::Float32) t = ops::to_dtype(t, DType::Float32);
    if (!t.is_contiguous()) t = ops::contiguous(t);
    in_ptr[i] = t.data<float>();
    period[i] = t.numel();
    DC_CHECK(period[i] >= 1 && total % period[i] == 0, RuntimeError,
             "[jit] fused elementwise operand of ", period[i], " elements does not tile ",
             total);
    if (period[i] > 1 && period[i] < kBlock) small = std::max(small, period[i]);
    if (period[i] >= kBlock && period[i] < total) large = std::min(large, period[i]);
  }
  // Blocks: a multiple of every short period (those operands are tiled into a buffer of one
  // block, once per thread), and never across a multiple of a long one. Periods of suffix
  // shapes nest, so the longest short period is a multiple of the others.
  int64_t block = kBlock;
  if (large < total) {
    block = small > 1 ? small : kBlock;  // short and long periods together: one row of `small`
    if (small > 1 && large % small != 0) block = 1;
  } else if (small > 1) {
    block = small * (kBlock / small);
  }
  const int64_t per_row = large < total ? (large + block - 1) / block : 0;
  const int64_t nblocks = large < total ? (total / large) * per_row : (total + block - 1) / block;
  tensor_list outs;
  std::vector<float*> out_ptr(ninstr, nullptr);
  for (int64_t r : out_regs) {
    outs.push_back(Tensor::empty(shape, DType::Float32));
    out_ptr[r - nin] = outs.back().data<float>();
  }
  const cpu::ElementwiseTable& tab = cpu::elementwise_table();
  const int f32 = static_cast<int>(DType::Float32);
  parallel_for(0, nblocks, std::max<int64_t>(1, (1 << 16) / block), [&](int64_t b0, int64_t b1) {
    // Per thread: a buffer per instruction and per tiled operand, each one block long.
    std::vector<float> scratch(static_cast<size_t>((ninstr + nin) * block) + 16);
    float* base = scratch.data() + (16 - reinterpret_cast<uintptr_t>(scratch.data()) / 4 % 16) % 16;
    std::vector<float*> temp(ninstr), tiled(nin, nullptr);
    for (int i = 0; i < ninstr; ++i) temp[i] = base + static_cast<int64_t>(i) * block;
    for (int i = 0; i < nin; ++i) {
      if (period[i] == 1 || period[i] >= block || block % period[i] != 0) continue;
      tiled[i] = base + static_cast<int64_t>(ninstr + i) * block;
      for (int64_t k = 0; k < block; k += period[i])
        std::memcpy(tiled[i] + k, in_ptr[i], sizeof(float) * period[i]);
    }
    for (int64_t bi = b0; bi < b1; ++bi) {
      int64_t start, len;
      if (large < total) {
        const int64_t row = bi / per_row, j = bi % per_row;
        start = row * large + j * block;
        len = std::min(block, (row + 1) * large - start);
      } else {
        start = bi * block;
        len = std::min(block, total - start);
      }
      auto reg_ptr = [&](int64_t r, int64_t& stride) -> char* {
        stride = sizeof(float);
        if (r < nin) {
          if (period[r] == 1) stride = 0;
          const float* p = period[r] == 1 ? in_ptr[r]
                           : tiled[r]     ? tiled[r]
                                          : in_ptr[r] + start % period[r];
          return reinterpret_cast<char*>(const_cast<float*>(p));
        }
        const int64_t t = r - nin;
        return reinterpret_cast<char*>(out_ptr[t] ? out_ptr[t] + start : temp[t]);
      };
      for (int i = 0; i < ninstr; ++i) {
        const int64_t* c = &code[4 * i];
        int64_t st[3];
        char* data[3];
        data[0] = reg_ptr(nin + i, st[0]);
        data[1] = reg_ptr(c[2], st[1]);
        if (c[0] == 0) {
          tab.unary[c[1]][f32](data, st, len, nullptr);
        } else {
          data[2] = reg_ptr(c[3], st[2]);
          tab.binary[c[1]][f32](data, st, len, nullptr);
        }
      }
    }
  });
  return outs;
}

}  // namespace

int fused_elementwise_op() {
  static const int id = register_op("_fused_elementwise", &invoke_fused, Effect::None);
  return id;
}

}  // namespace dc::jit
