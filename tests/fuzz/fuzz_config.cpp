// libFuzzer target: the config.json readers: io::parse_json_bytes (behind
// io::read_json_file) and GPTConfig / BertConfig / T5Config::from_hf_json (behind
// load_gpt2_config, load_bert_config, load_t5_config), and io::JsonFields.
#include <genai/io/json_fields.hpp>
#include <genai/models/transformer/bert.hpp>
#include <genai/models/transformer/gpt.hpp>
#include <genai/models/transformer/t5.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j;
  try {
    j = genai::io::parse_json_bytes(data, size, "load_config", "'config.json'");
  } catch (const genai::Error&) {
    return 0;
  }
  try {
    (void)genai::models::GPTConfig::from_hf_json(j, "'config.json'");
  } catch (const genai::Error&) {
  }
  try {
    (void)genai::models::BertConfig::from_hf_json(j, "'config.json'");
  } catch (const genai::Error&) {
  }
  try {
    (void)genai::models::T5Config::from_hf_json(j, "'config.json'");
  } catch (const genai::Error&) {
  }
  return 0;
}
