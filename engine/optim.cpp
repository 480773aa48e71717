#include "engine/optim.h"

#include "engine/backend.h"

namespace unet {

SGD::SGD(std::vector<Var> params, float lr, float momentum, float weight_decay)
    : params_(std::move(params)), lr_(lr), mu_(momentum), wd_(weight_decay) {
  UNET_CHECK(lr > 0.0f, "SGD: learning rate must be positive, got ", lr);
  UNET_CHECK(momentum >= 0.0f && momentum < 1.0f, "SGD: momentum must be in [0, 1), got ", momentum);
  UNET_CHECK(weight_decay >= 0.0f, "SGD: weight decay must be >= 0, got ", weight_decay);
  for (const Var& p : params_) {
    UNET_CHECK(p.requires_grad(), "SGD: parameter ", p.name(), " does not require a gradient");
    v_.push_back(Tensor::zeros(p.shape(), DType::F32, p.device()));
  }
}

void SGD::step() {
  for (size_t i = 0; i < params_.size(); ++i) {
    const Var& p = params_[i];
    if (!p.grad().defined()) continue;
    Device d = p.device();
    OpRange r("sgd_momentum");
    kernels_for(d).sgd_momentum(stream_for(d), p.value().f32(), p.grad().f32(), v_[i].f32(), p.value().numel(),
                                lr_, mu_, wd_);
  }
}

void SGD::zero_grad() {
  for (const Var& p : params_) p.zero_grad();
}

}  // namespace unet
