// genai/ops/all.hpp: every primitive op family. Each family's header ends by
// including this file, so including any one of them defines all primitive ops
// (their backward formulas call one another).
#pragma once

#include "genai/ops/copy.hpp"
#include "genai/ops/elementwise.hpp"
#include "genai/ops/index.hpp"
#include "genai/ops/matmul.hpp"
#include "genai/ops/pad.hpp"
#include "genai/ops/reduce.hpp"
#include "genai/ops/softmax.hpp"
#include "genai/ops/view.hpp"

// the backward engine (Tensor::backward, autograd::grad) comes with the ops
#include "genai/autograd/engine.hpp"
