#include "engine/autograd.h"

#include "engine/backend.h"

namespace unet {

namespace {
thread_local bool g_grad_enabled = true;
}

Var::Var(Tensor value, bool requires_grad, std::string name) : p_(std::make_shared<VarImpl>()) {
  p_->value = std::move(value);
  p_->requires_grad = requires_grad;
  p_->name = std::move(name);
}

void Var::accumulate_grad(Tensor g) const {
  UNET_CHECK(g.shape() == shape(), "gradient of shape ", shape_str(g.shape()), " for ",
             name().empty() ? "a tensor" : name(), " of shape ", shape_str(shape()));
  if (!p_->grad.defined()) p_->grad = std::move(g);
  else p_->grad.add_(g);
  p_->grad_is_one = false;
}

Tensor Var::grad_sink(bool* accumulate) const {
  *accumulate = p_->grad.defined();
  if (*accumulate)
    UNET_CHECK(p_->grad.shape() == shape() && p_->grad.dtype() == DType::F32 && p_->grad.device() == p_->value.device(),
               "gradient of shape ", shape_str(p_->grad.shape()), " for ", name().empty() ? "a tensor" : name(),
               " of shape ", shape_str(shape()));
  else p_->grad = Tensor::empty(shape(), DType::F32, p_->value.device());
  p_->grad_is_one = false;
  return p_->grad;
}

Tape& Tape::current() {
  thread_local Tape tape;
  return tape;
}

void Tape::record(const char* op, std::function<void()> backward) { nodes_.push_back(Node{op, std::move(backward)}); }

void Tape::run_backward() {
  // Move the nodes out first: a node's closure may own the last reference to big activations,
  // and popping as we go frees them as early as possible.
  std::vector<Node> nodes = std::move(nodes_);
  nodes_.clear();
  while (!nodes.empty()) {
    {
      OpRange range(nodes.back().op, /*backward=*/true);
      nodes.back().backward();
    }
    nodes.pop_back();
  }
}

bool grad_enabled() { return g_grad_enabled; }

NoGrad::NoGrad() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = prev_; }

void backward(const Var& loss) {
  UNET_CHECK(loss.defined() && loss.value().numel() == 1, "backward(): the loss must be a scalar, got ",
             loss.defined() ? shape_str(loss.shape()) : std::string("an undefined Var"));
  UNET_CHECK(loss.requires_grad(), "backward(): the loss does not depend on any parameter");
  loss.grad() = Tensor::full(loss.shape(), 1.0f, loss.device());
  loss.impl()->grad_is_one = true;
  Tape::current().run_backward();
}

}  // namespace unet
