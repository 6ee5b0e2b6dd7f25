// genai/tensor.hpp: the tensor core in one include: Tensor, factories, random
// numbers, threads, every primitive op, autograd (backward, grad, gradcheck).
#pragma once

#include "genai/config.hpp"
#include "genai/core/dtype.hpp"
#include "genai/core/factory.hpp"
#include "genai/core/rng.hpp"
#include "genai/core/shape.hpp"
#include "genai/core/tensor.hpp"
#include "genai/core/threading.hpp"
#include "genai/autograd/engine.hpp"
#include "genai/autograd/grad_mode.hpp"
#include "genai/autograd/gradcheck.hpp"
#include "genai/ops/all.hpp"
