// genai/io/json_fields.hpp: reading small JSON files such as Hugging Face's
// config.json: the file read and parsed with errors that name the caller and the
// path, written atomically with extra fields merged in, and typed optional fields (a missing or null field takes its default, a
// field of the wrong type is an error naming the field).
//
//   nlohmann::json j = io::read_json_file(dir + "/config.json", "load_gpt2_config",
//                                         "a GPT-2 folder holds config.json and model.safetensors");
//   io::JsonFields f(j, "GPTConfig", "config.json");
//   int64_t n_layer = f.get_int("n_layer", 12);
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "genai/io/file.hpp"

namespace genai {
namespace io {

/// Parses `size` bytes of JSON held in memory; errors start with `who` and name the
/// source `what` (e.g. "'gpt2/config.json'"). Documents nested deeper than 512 levels
/// are refused (copying or printing a nlohmann::json recurses once per level).
inline nlohmann::json parse_json_bytes(const unsigned char* data, size_t size, const std::string& who,
                                       const std::string& what) {
  int too_deep = 0;
  auto cb = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > 512) too_deep = depth;
    return true;
  };
  nlohmann::json j = nlohmann::json::parse(data, data + size, cb, false);
  GENAI_CHECK(!too_deep, who, ": ", what, " nests JSON values more than 512 levels deep");
  GENAI_CHECK(!j.is_discarded(), who, ": ", what, " is not valid JSON");
  return j;
}

/// Reads and parses the JSON file `path`; errors start with `who` and end with `hint`
/// when the file is missing.
inline nlohmann::json read_json_file(const std::string& path, const std::string& who, const std::string& hint) {
  GENAI_CHECK(std::filesystem::exists(path), who, ": '", path, "' not found; hint: ", hint);
  std::vector<unsigned char> bytes = read_file(path, who.c_str());
  return parse_json_bytes(bytes.data(), bytes.size(), who, "'" + path + "'");
}

/// Writes `j` (with the fields of `extra` merged in, when it is an object) to `path`
/// atomically, indented as Hugging Face writes config.json.
inline void write_json_file(const std::string& path, nlohmann::json j, const nlohmann::json& extra = {}) {
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  const std::string text = j.dump(2) + "\n";
  write_file_atomic(path, text.data(), text.size());
}

/// Typed optional fields of a JSON object; `who` (e.g. "BertConfig") and `what`
/// (e.g. the file's path) name the object in errors.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& j, std::string who, std::string what)
      : j_(j), who_(std::move(who)), what_(std::move(what)) {
    GENAI_CHECK(j.is_object(), who_, ": ", what_, " is not a JSON object");
  }
  /// True when `key` is present and not null.
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  int64_t get_int(const char* key, int64_t def) const {
    if (!has(key)) return def;
    GENAI_CHECK(j_[key].is_number_integer(), who_, ": ", what_, ": field '", key, "' must be an integer");
    return j_[key].get<int64_t>();
  }
  double get_real(const char* key, double def) const {
    if (!has(key)) return def;
    GENAI_CHECK(j_[key].is_number(), who_, ": ", what_, ": field '", key, "' must be a number");
    return j_[key].get<double>();
  }
  bool get_bool(const char* key, bool def) const {
    if (!has(key)) return def;
    GENAI_CHECK(j_[key].is_boolean(), who_, ": ", what_, ": field '", key, "' must be true or false");
    return j_[key].get<bool>();
  }
  std::string get_string(const char* key, const std::string& def) const {
    if (!has(key)) return def;
    GENAI_CHECK(j_[key].is_string(), who_, ": ", what_, ": field '", key, "' must be a string");
    return j_[key].get<std::string>();
  }

 private:
  const nlohmann::json& j_;
  std::string who_, what_;
};

}  // namespace io
}  // namespace genai
