// genai/models/diffusion/diffusion.hpp: diffusion models in one include -- the noise schedules
// and losses (schedule.hpp), the U-Net (unet.hpp), the samplers, DDIM inversion and the
// variational bound (sampling.hpp) -- plus the training step:
//
//   diffusion::UNet net;                                            // the ddpm_unet reference
//   diffusion::NoiseSchedule sched;                                 // linear betas, T = 1000
//   optim::Adam opt(net.parameters(), {.lr = 2e-4});
//   optim::ExponentialMovingAverage ema(net.parameters(), 0.999);
//   for (...) { double loss = diffusion::train_step(net, opt, sched, x0, labels, {}); ema.update(); }
//   ema.store(); ema.copy_to();
//   Tensor imgs = diffusion::sample(diffusion::unet_denoiser(net), sched, {64, 1, 28, 28}, {.steps = 50}).images;
//   ema.restore();
//
// One training step (Ho et al. 2020, Algorithm 1): t ~ U{0..T-1}, eps ~ N(0, I) per image,
// x_t = q_sample(x0, t, eps), loss = diffusion_loss(net(x_t, t, y), x0, eps, t) (the target and the
// weighting of LossOptions), backward, optimizer step. For a class-conditional net each label is
// replaced by the null class with probability p_uncond (classifier-free guidance training).
// Images are expected in [-1, 1] (io::normalize_to_neg_one_to_one).
#pragma once

#include "genai/models/diffusion/sampling.hpp"
#include "genai/models/diffusion/schedule.hpp"
#include "genai/models/diffusion/unet.hpp"
#include "genai/optim/clip.hpp"
#include "genai/optim/optimizer.hpp"

namespace genai {
namespace models {
namespace diffusion {

/// The training loss for given timesteps t (N) int64 and noise (N, C, H, W); labels (N) int64 or
/// undefined. Differentiable in the network's parameters.
inline Tensor training_loss(UNet& model, const NoiseSchedule& s, const Tensor& x0, const Tensor& t, const Tensor& noise,
                            const Tensor& labels = Tensor(), const LossOptions& o = {}) {
  Tensor x_t = s.q_sample(x0, t, noise);
  return diffusion_loss(model.forward(x_t, t, labels), x0, noise, t, s, o);
}

struct TrainStepOptions {
  LossOptions loss{};
  double p_uncond = 0.1;     // class-conditional nets: probability of training a label as "no class"
  double grad_clip = 0.0;    // > 0: clip the global gradient norm to this value
};

/// One optimizer step on the batch x0 (N, C, H, W) in [-1, 1]; draws t, the noise and the label
/// dropout from `gen`. Returns the loss (before the step).
inline double train_step(UNet& model, optim::Optimizer& opt, const NoiseSchedule& s, const Tensor& x0,
                         const Tensor& labels = Tensor(), const TrainStepOptions& o = {},
                         Generator& gen = default_generator()) {
  GENAI_CHECK(x0.defined() && x0.dim() == 4, "diffusion::train_step: x0 must be (N, C, H, W), got ",
              x0.defined() ? shape_str(x0.shape()) : std::string("(undefined)"));
  const int64_t N = x0.size(0);
  Tensor t = randint(0, s.num_timesteps(), {N}, kInt64, gen);
  Tensor noise = randn(x0.shape(), x0.dtype(), gen);
  Tensor y = labels;  // an unconditional net rejects labels in forward
  if (model.class_conditional() && labels.defined()) {
    std::vector<int64_t> v = labels.to_vector<int64_t>();
    for (auto& l : v)
      if (o.p_uncond > 0 && gen.uniform() < o.p_uncond) l = model.null_class();
    y = tensor(v, {N});
  }
  opt.zero_grad();
  Tensor loss = training_loss(model, s, x0, t, noise, y, o.loss);
  loss.backward();
  if (o.grad_clip > 0) optim::clip_grad_norm_(model.parameters(), o.grad_clip);
  opt.step();
  return loss.item<double>();
}

}  // namespace diffusion
}  // namespace models
}  // namespace genai
