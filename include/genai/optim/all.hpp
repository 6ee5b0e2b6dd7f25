// genai/optim/all.hpp: every optimizer, the LR schedules, gradient clipping and the
// parameter EMA, GradScaler (torch.optim, torch.optim.lr_scheduler, torch.nn.utils.clip_grad_*).
#pragma once

#include "genai/optim/adagrad.hpp"
#include "genai/optim/adam.hpp"
#include "genai/optim/clip.hpp"
#include "genai/optim/ema.hpp"
#include "genai/optim/grad_scaler.hpp"
#include "genai/optim/lbfgs.hpp"
#include "genai/optim/lr_scheduler.hpp"
#include "genai/optim/optimizer.hpp"
#include "genai/optim/rmsprop.hpp"
#include "genai/optim/sgd.hpp"
