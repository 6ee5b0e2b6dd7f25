// Tests of safetensors reading and writing.
#include "test_util.hpp"

#include <cstdio>
#include <fstream>

using namespace genai;

TEST_CASE("safetensors round trip keeps names, shapes, dtypes, values and metadata") {
  manual_seed(1);
  io::TensorMap m{{"encoder.layers.0.weight", randn({3, 4})},
                  {"encoder.layers.0.bias", randn({4}, kFloat64)},
                  {"steps", tensor({7}, {1}, kInt64)},
                  {"mask", tensor({1, 0, 1}, {3}, kBool)},
                  {"scalar", scalar_tensor(2.5)},
                  {"empty", zeros({0, 3})}};
  std::string path = "test_roundtrip.safetensors";
  io::save_safetensors(path, m, {{"format", "pt"}});
  std::map<std::string, std::string> meta;
  io::TensorMap r = io::load_safetensors(path, &meta);
  std::remove(path.c_str());
  CHECK(meta.at("format") == "pt");
  REQUIRE(r.size() == m.size());
  for (const auto& [k, t] : m) {
    INFO(k);
    REQUIRE(r.count(k) == 1);
    CHECK(r.at(k).shape() == t.shape());
    CHECK(r.at(k).dtype() == t.dtype());
    CHECK(r.at(k).to_vector<double>() == t.to_vector<double>());
  }
}

TEST_CASE("safetensors writes a non-contiguous tensor's values in row-major order") {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).t();
  auto bytes = io::safetensors_bytes({{"t", t}});
  io::TensorMap r = io::load_safetensors_bytes(bytes.data(), bytes.size(), "buffer");
  CHECK(r.at("t").to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
}
