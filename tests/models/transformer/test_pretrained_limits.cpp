// Tests for include/genai/models/transformer/pretrained.hpp: a Hugging Face folder whose
// config.json declares a model far larger than its model.safetensors is refused before
// the model is allocated (issue 14: loading a file never allocates more than the file's
// size implies), and the tiny real folders of tests/fixtures still load.
#include "test_util.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <genai/models/transformer/bert.hpp>
#include <genai/models/transformer/gpt.hpp>
#include <genai/models/transformer/t5.hpp>

using namespace genai;
using namespace genai::models;

namespace {

/// A copy of the fixture folder `name` whose config.json has `field` set to `value`.
std::string folder_with(const std::string& name, const std::string& field, int64_t value) {
  namespace fs = std::filesystem;
  const fs::path src = fs::path(GENAI_FIXTURE_DIR) / name;
  const fs::path dst = fs::temp_directory_path() / ("genai_limits_" + name + "_" + field);
  fs::remove_all(dst);
  fs::create_directories(dst);
  fs::copy_file(src / "model.safetensors", dst / "model.safetensors");
  nlohmann::json cfg = nlohmann::json::parse(std::ifstream(src / "config.json"));
  cfg[field] = value;
  std::ofstream(dst / "config.json") << cfg.dump();
  return dst.string();
}

}  // namespace

TEST_CASE("load_*_pretrained refuse a config.json too large for its weights before allocating", "[pretrained]") {
  using Catch::Matchers::Contains;
  const int64_t huge = 1'000'000'000'000;  // 10^12: terabytes as float32
  const std::string fixtures = GENAI_FIXTURE_DIR;
  SECTION("GPT-2") {
    REQUIRE_NOTHROW(load_gpt2_pretrained(fixtures + "/gpt2_tiny_hf"));
    CHECK_THROWS_WITH(load_gpt2_pretrained(folder_with("gpt2_tiny_hf", "vocab_size", huge)),
                      Contains("load_gpt2_pretrained: config.json declares a model of at least") &&
                          Contains("do not belong together (nothing was allocated)"));
    // more layers than the file holds, with the real vocabulary
    CHECK_THROWS_WITH(load_gpt2_pretrained(folder_with("gpt2_tiny_hf", "n_layer", 100000)),
                      Contains("do not belong together"));
  }
  SECTION("BERT") {
    REQUIRE_NOTHROW(load_bert_pretrained(fixtures + "/bert_tiny_hf"));
    CHECK_THROWS_WITH(load_bert_pretrained(folder_with("bert_tiny_hf", "vocab_size", huge)),
                      Contains("load_bert_pretrained: config.json declares a model of at least"));
    CHECK_THROWS_WITH(load_bert_model(folder_with("bert_tiny_hf", "intermediate_size", huge)),
                      Contains("load_bert_model: config.json declares"));
  }
  SECTION("T5") {
    REQUIRE_NOTHROW(load_t5_pretrained(fixtures + "/t5_tiny_hf"));
    CHECK_THROWS_WITH(load_t5_pretrained(folder_with("t5_tiny_hf", "d_ff", huge)),
                      Contains("load_t5_pretrained: config.json declares a model of at least"));
  }
}
