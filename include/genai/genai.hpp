// genai/genai.hpp: the whole library.
//
// genai is a header-only C++20 library: a reverse-mode autodiff tensor core on
// Eigen, and on it the layers, optimizers, I/O and generative models. Include
// this header, or only the parts you use (genai/tensor.hpp for the core).
#pragma once

#include "genai/tensor.hpp"
