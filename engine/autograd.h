// Reverse-mode autograd on a tape.
//
// A Var is a Tensor value plus, for parameters and anything computed from them, a gradient.
// Each op that produces a Var needing a gradient appends one Node to the thread's tape: a closure
// holding exactly what its backward needs (inputs, outputs, an RNG offset). backward(loss) seeds
// d loss/d loss = 1, runs the nodes in reverse order, and clears the tape. Gradients accumulate
// into Var::grad (a tensor used twice, like a skip connection, receives the sum); zero_grad()
// drops them. Inside a NoGrad scope nothing is recorded: inference keeps no activations alive.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace unet {

struct VarImpl {
  Tensor value;
  Tensor grad;  // undefined until a gradient arrives
  bool requires_grad = false;
  bool grad_is_one = false;  // grad was seeded with 1 by backward(): ops may skip reading it
  std::string name;
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false, std::string name = {});
  static Var parameter(Tensor value, std::string name) { return Var(std::move(value), true, std::move(name)); }

  bool defined() const { return p_ != nullptr; }
  Tensor& value() const { return p_->value; }
  Tensor& grad() const { return p_->grad; }
  bool requires_grad() const { return p_ && p_->requires_grad; }
  const std::string& name() const { return p_->name; }
  const Shape& shape() const { return p_->value.shape(); }
  Device device() const { return p_->value.device(); }
  VarImpl* impl() const { return p_.get(); }

  // Adds g to the gradient: adopts g when none is there yet, adds it otherwise.
  void accumulate_grad(Tensor g) const;
  // For a backward pass that can add into its output: the tensor to write the gradient into, the gradient so
  // far (*accumulate set: the pass adds to it, and no separate add pass runs) or a new one (the pass overwrites).
  Tensor grad_sink(bool* accumulate) const;
  void zero_grad() const { p_->grad = Tensor(); }

 private:
  std::shared_ptr<VarImpl> p_;
};

class Tape {
 public:
  struct Node {
    const char* op;                  // the op's name, as in the kernel table
    std::function<void()> backward;  // reads output grads, accumulates input grads
  };
  static Tape& current();  // one tape per thread
  void record(const char* op, std::function<void()> backward);
  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }
  // Runs the recorded nodes in reverse and clears the tape.
  void run_backward();

 private:
  std::vector<Node> nodes_;
};

bool grad_enabled();

// RAII: disables recording (inference, evaluation).
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};

// Seeds the scalar loss's gradient with 1 and back-propagates through the tape.
void backward(const Var& loss);

}  // namespace unet
