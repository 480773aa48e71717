// Optimizers in PyTorch's conventions, so that weights and optimizer state map one to one onto
// torch.optim's (docs/checkpoints.md):
//   SGD      v = mu v + g + wd w;  w -= lr v                 (torch.optim.SGD, dampening 0)
//   Nesterov v = mu v + g + wd w;  w -= lr (g + wd w + mu v) (torch.optim.SGD, nesterov=True)
//   Adam     m, s: first and second moments with bias correction (torch.optim.Adam)
// The paper trains with SGD, batch 1 on large tiles and mu = 0.99; docs/training.md compares the others.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "kernels/kernels.h"

namespace unet {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // A step in two halves: next() counts it and returns its update (this step's hyperparameters, Adam's bias
  // corrections); apply() runs an update on every parameter with a gradient (others are left alone). A
  // replayed CUDA graph (engine/graph.h) calls next() on the host and runs the captured apply().
  virtual kernels::OptimStep next() = 0;
  void apply(const kernels::OptimStep& st);
  void step() { apply(next()); }
  // The two values of an update that change from step to step (kernels::OptimStep::scalars).
  static std::array<float, 2> scalars_of(const kernels::OptimStep& st);
  void zero_grad();
  float lr() const { return lr_; }
  void set_lr(float lr);
  float weight_decay() const { return wd_; }
  const std::vector<Var>& params() const { return params_; }
  // Updates taken so far (Adam's bias correction depends on it; checkpoints store it).
  int64_t steps() const { return steps_; }
  void set_steps(int64_t t);
  // "sgd", "nesterov" or "adam": what checkpoints record.
  virtual const char* kind() const = 0;
  // A one-line description for logs, e.g. "SGD lr 0.002 momentum 0.99".
  virtual std::string describe() const = 0;
  // The state a resumed run needs besides the weights: named sets of buffers, one per parameter,
  // same shape and device ("momentum"; "exp_avg" and "exp_avg_sq": torch.optim's names).
  struct Buffers {
    std::string name;
    std::vector<Tensor>* tensors;
  };
  virtual std::vector<Buffers> state() = 0;

 protected:
  Optimizer(std::vector<Var> params, float lr, float weight_decay, const char* who);
  std::vector<Tensor> zeros_like_params() const;
  // The state buffers an update uses: s0[i] for every kind, s1[i] for Adam (nullptr otherwise).
  virtual const std::vector<Tensor>* state0() = 0;
  virtual const std::vector<Tensor>* state1() { return nullptr; }
  std::vector<Var> params_;
  float lr_, wd_;
  int64_t steps_ = 0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Var> params, float lr, float momentum = 0.99f, float weight_decay = 0.0f, bool nesterov = false);
  kernels::OptimStep next() override;
  float momentum() const { return mu_; }
  bool nesterov() const { return nesterov_; }
  const char* kind() const override { return nesterov_ ? "nesterov" : "sgd"; }
  std::string describe() const override;
  // One buffer per parameter, same shape and device; zero until the first step.
  std::vector<Tensor>& momentum_buffers() { return v_; }
  std::vector<Buffers> state() override { return {{"momentum", &v_}}; }

 protected:
  const std::vector<Tensor>* state0() override { return &v_; }

 private:
  std::vector<Tensor> v_;
  float mu_;
  bool nesterov_;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Var> params, float lr, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
       float weight_decay = 0.0f);
  kernels::OptimStep next() override;
  const char* kind() const override { return "adam"; }
  std::string describe() const override;
  std::vector<Buffers> state() override { return {{"exp_avg", &m_}, {"exp_avg_sq", &s_}}; }

 protected:
  const std::vector<Tensor>* state0() override { return &m_; }
  const std::vector<Tensor>* state1() override { return &s_; }

 private:
  std::vector<Tensor> m_, s_;
  float b1_, b2_, eps_;
};

// The optimizer named `kind` ("sgd", "nesterov" or "adam"; anything else throws naming it).
// momentum is SGD's mu or Adam's beta1; Adam's beta2 is 0.999 and eps 1e-8.
std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, std::vector<Var> params, float lr, float momentum,
                                          float weight_decay);

}  // namespace unet
