// genai/genai.hpp: the whole library.
//
// genai is a header-only C++20 library: a reverse-mode autodiff tensor core on
// Eigen, and on it the layers, optimizers, I/O and generative models. Include
// this header, or only the parts you use (genai/tensor.hpp for the core).
#pragma once

#include "genai/tensor.hpp"

// differentiable ops beyond the primitives
#include "genai/ops/attention.hpp"
#include "genai/ops/conv.hpp"
#include "genai/ops/embedding.hpp"
#include "genai/ops/loss.hpp"
#include "genai/ops/norm.hpp"
#include "genai/ops/pool.hpp"

// modules
#include "genai/nn/conv.hpp"
#include "genai/nn/init.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/module.hpp"
#include "genai/nn/norm.hpp"

// optimizers, schedules, clipping, EMA
#include "genai/optim/all.hpp"

// files and data
#include "genai/data/char_dataset.hpp"
#include "genai/data/char_tokenizer.hpp"
#include "genai/data/dataloader.hpp"
#include "genai/data/dataset.hpp"
#include "genai/data/fashion_mnist.hpp"
#include "genai/io/checkpoint.hpp"
#include "genai/io/idx.hpp"
#include "genai/io/image.hpp"
#include "genai/io/safetensors.hpp"

// training loop helpers
#include "genai/train/metrics.hpp"
#include "genai/train/progress.hpp"
