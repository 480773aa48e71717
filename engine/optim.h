// SGD with momentum, in PyTorch's convention (v = mu v + g + wd w;  w -= lr v), so that both
// the weights and the momentum buffers map one to one onto torch.optim.SGD's state.
// The paper trains with batch 1 on large tiles and mu = 0.99.
#pragma once
#include <vector>

#include "engine/autograd.h"

namespace unet {

class SGD {
 public:
  SGD(std::vector<Var> params, float lr, float momentum = 0.99f, float weight_decay = 0.0f);
  void step();        // parameters without a gradient are left alone
  void zero_grad();
  float lr() const { return lr_; }
  void set_lr(float lr) { lr_ = lr; }
  float momentum() const { return mu_; }
  float weight_decay() const { return wd_; }
  const std::vector<Var>& params() const { return params_; }
  // One buffer per parameter, same shape and device; zero until the first step.
  std::vector<Tensor>& momentum_buffers() { return v_; }

 private:
  std::vector<Var> params_;
  std::vector<Tensor> v_;
  float lr_, mu_, wd_;
};

}  // namespace unet
