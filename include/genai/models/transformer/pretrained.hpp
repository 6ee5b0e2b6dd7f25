// genai/models/transformer/pretrained.hpp: what the Hugging Face folder loaders
// (load_gpt2_pretrained, load_bert_pretrained / load_bert_model, load_t5_pretrained)
// check before they allocate a model.
//
// A loader builds the model that config.json describes, then fills it from
// model.safetensors. A config.json declaring absurd sizes (vocab_size 10^12) would make
// it allocate terabytes before the weights are compared; instead, the parameters the
// config implies (a lower bound: the embedding and the layers' weight matrices) may not
// outnumber the bytes of the weights file, unless they are few (at most 16M, 64 MB as
// float32, which any machine allocates). A real file holds every parameter in 2 or 4
// bytes (float16 / bfloat16 / float32), so real folders pass with room to spare (GPT-2
// small: 124M parameters in a 548 MB float32 file), and the model a loader allocates
// stays within about 4 times the file's size as float32, or 64 MB (the bound counts the
// weight matrices, not biases and norms). Smaller disagreements between
// config.json and the file are left to load_state_dict, whose "size mismatch" error
// names the tensor.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

#include "genai/config.hpp"

namespace genai {
namespace models {
namespace detail {

/// Throws genai::Error when `min_params` (the parameters config.json implies) are more than
/// 16M and outnumber the bytes of the file `weights_path`. `op` names the loader in the
/// message. A missing file is left to the reader.
inline void check_config_fits_weights(const char* op, const std::string& weights_path, double min_params) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(weights_path, ec);
  if (ec) return;
  constexpr double kAlwaysAllowed = 16e6;  // parameters: 64 MB as float32
  GENAI_CHECK(min_params <= kAlwaysAllowed || min_params <= static_cast<double>(bytes), op,
              ": config.json declares a model of at least ", min_params, " parameters (", min_params * 4.0 / 1e9,
              " GB as float32), but '", weights_path, "' has only ", bytes,
              " bytes, fewer than one per parameter; config.json and model.safetensors do not belong together "
              "(nothing was allocated)");
}

}  // namespace detail
}  // namespace models
}  // namespace genai
