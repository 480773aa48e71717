#include "engine/optim.h"

#include <cmath>
#include <sstream>

#include "engine/backend.h"
#include "engine/graph.h"

namespace unet {

Optimizer::Optimizer(std::vector<Var> params, float lr, float weight_decay, const char* who)
    : params_(std::move(params)), lr_(lr), wd_(weight_decay) {
  UNET_CHECK(lr > 0.0f && std::isfinite(lr), who, ": learning rate must be positive, got ", lr);
  UNET_CHECK(weight_decay >= 0.0f, who, ": weight decay must be >= 0, got ", weight_decay);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Var& p = params_[i];
    UNET_CHECK(p.requires_grad(), who, ": parameter ", p.name(), " does not require a gradient");
    // One update per tensor: the list update (optim_update_list) runs all of them at once on the GPU.
    for (size_t j = 0; j < i; ++j)
      UNET_CHECK(params_[j].value().f32() != p.value().f32(), who, ": parameter ", p.name(), " is listed twice");
  }
}

std::vector<Tensor> Optimizer::zeros_like_params() const {
  std::vector<Tensor> v;
  for (const Var& p : params_) v.push_back(Tensor::zeros(p.shape(), DType::F32, p.device()));
  return v;
}

void Optimizer::set_lr(float lr) {
  UNET_CHECK(lr >= 0.0f && std::isfinite(lr), "optimizer: learning rate must be >= 0, got ", lr);
  lr_ = lr;
}

void Optimizer::set_steps(int64_t t) {
  UNET_CHECK(t >= 0, "optimizer: step count must be >= 0, got ", t);
  steps_ = t;
}

void Optimizer::zero_grad() {
  for (const Var& p : params_) p.zero_grad();
}

SGD::SGD(std::vector<Var> params, float lr, float momentum, float weight_decay, bool nesterov)
    : Optimizer(std::move(params), lr, weight_decay, "SGD"), mu_(momentum), nesterov_(nesterov) {
  UNET_CHECK(momentum >= 0.0f && momentum < 1.0f, "SGD: momentum must be in [0, 1), got ", momentum);
  v_ = zeros_like_params();
}

// Every parameter with a gradient, in one optim_update_list call per run of up to kMaxListTensors on one
// device: one launch for the U-Net's 46 tensors on the GPU; the per-tensor kernels' bits. Inside a graph
// capture the step's scalars are read from the capture's device memory, and the captured step's own values go
// to the capture's host copy (its first launch reads them).
void Optimizer::apply(const kernels::OptimStep& update) {
  kernels::OptimStep st = update;
  Capture* cap = current_capture();
  if (cap) {
    cap->host.optim = scalars_of(st);
    ++cap->optimizer_updates;
    st.scalars = cap->optim;
  }
  const char* name = st.kind == kernels::OptimKind::kAdam       ? "adam_update"
                     : st.kind == kernels::OptimKind::kNesterov ? "sgd_nesterov"
                                                                : "sgd_momentum";
  OpRange r(name);
  const std::vector<Tensor>*s0 = state0(), *s1 = state1();
  kernels::ParamList list;
  Device dev = Device::CPU;
  auto flush = [&] {
    if (list.count == 0) return;
    kernels_for(dev).optim_update_list(stream_for(dev), list, st);
    list.count = 0;
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    const Var& p = params_[i];
    if (!p.grad().defined()) continue;
    if (list.count == kernels::kMaxListTensors || (list.count > 0 && p.device() != dev)) flush();
    dev = p.device();
    UNET_CHECK(!cap || dev == cap->device, "optimizer: a step captured for the ", device_name(cap->device),
               " updates parameter ", p.name(), " on the ", device_name(dev));
    const int k = list.count++;
    list.w[k] = p.value().f32();
    list.g[k] = p.grad().f32();
    list.s0[k] = (*s0)[i].f32();
    list.s1[k] = s1 ? (*s1)[i].f32() : nullptr;
    list.n[k] = p.value().numel();
  }
  flush();
}

std::array<float, 2> Optimizer::scalars_of(const kernels::OptimStep& st) {
  if (st.kind == kernels::OptimKind::kAdam) return {st.step, st.inv_sqrt_bc2};
  return {st.lr, 0.0f};
}

kernels::OptimStep SGD::next() {
  kernels::OptimStep st;
  st.kind = nesterov_ ? kernels::OptimKind::kNesterov : kernels::OptimKind::kSgd;
  st.lr = lr_, st.mu = mu_, st.wd = wd_;
  ++steps_;
  return st;
}

std::string SGD::describe() const {
  std::ostringstream os;
  os << (nesterov_ ? "SGD (Nesterov)" : "SGD") << " lr " << lr_ << " momentum " << mu_ << " weight decay " << wd_;
  return os.str();
}

Adam::Adam(std::vector<Var> params, float lr, float beta1, float beta2, float eps, float weight_decay)
    : Optimizer(std::move(params), lr, weight_decay, "Adam"), b1_(beta1), b2_(beta2), eps_(eps) {
  UNET_CHECK(beta1 >= 0.0f && beta1 < 1.0f, "Adam: beta1 must be in [0, 1), got ", beta1);
  UNET_CHECK(beta2 >= 0.0f && beta2 < 1.0f, "Adam: beta2 must be in [0, 1), got ", beta2);
  UNET_CHECK(eps > 0.0f, "Adam: eps must be positive, got ", eps);
  m_ = zeros_like_params();
  s_ = zeros_like_params();
}

kernels::OptimStep Adam::next() {
  ++steps_;
  // Bias corrections of step t, in double so that t in the millions stays exact enough.
  const double t = static_cast<double>(steps_);
  kernels::OptimStep st;
  st.kind = kernels::OptimKind::kAdam;
  st.step = static_cast<float>(lr_ / (1.0 - std::pow(static_cast<double>(b1_), t)));
  st.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(static_cast<double>(b2_), t)));
  st.b1 = b1_, st.b2 = b2_, st.eps = eps_, st.wd = wd_;
  return st;
}

std::string Adam::describe() const {
  std::ostringstream os;
  os << "Adam lr " << lr_ << " betas " << b1_ << ", " << b2_ << " eps " << eps_ << " weight decay " << wd_;
  return os.str();
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, std::vector<Var> params, float lr, float momentum,
                                          float weight_decay) {
  if (kind == "sgd") return std::make_unique<SGD>(std::move(params), lr, momentum, weight_decay, false);
  if (kind == "nesterov") return std::make_unique<SGD>(std::move(params), lr, momentum, weight_decay, true);
  if (kind == "adam") return std::make_unique<Adam>(std::move(params), lr, momentum, 0.999f, 1e-8f, weight_decay);
  UNET_FAIL("optimizer must be sgd, nesterov or adam, got \"", kind, "\"");
}

}  // namespace unet
