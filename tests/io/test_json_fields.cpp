// io::read_json_file and io::JsonFields (include/genai/io/json_fields.hpp), the
// config.json readers of GPT, BERT and T5: defaults for missing and null fields,
// typed values, and errors that name the reader, the file and the field.
#include "io_test_util.hpp"

#include <genai/io/json_fields.hpp>

using genai_test::error_of;
using genai_test::TempDir;
using genai_test::write_text;

TEST_CASE("JsonFields: present fields, defaults for missing and null ones", "[io][json]") {
  const nlohmann::json j = nlohmann::json::parse(
      R"({"n": 12, "x": 0.5, "i_as_real": 3, "flag": false, "name": "gelu_new", "nothing": null})");
  const genai::io::JsonFields f(j, "TestConfig", "config.json");
  CHECK(f.get_int("n", 7) == 12);
  CHECK(f.get_int("missing", 7) == 7);
  CHECK(f.get_int("nothing", 7) == 7);
  CHECK(f.get_real("x", 1.0) == 0.5);
  CHECK(f.get_real("i_as_real", 1.0) == 3.0);  // an integer is a number
  CHECK(f.get_bool("flag", true) == false);
  CHECK(f.get_bool("missing", true) == true);
  CHECK(f.get_string("name", "relu") == "gelu_new");
  CHECK(f.get_string("nothing", "relu") == "relu");
  CHECK(f.has("n"));
  CHECK_FALSE(f.has("nothing"));
  CHECK_FALSE(f.has("missing"));
}

TEST_CASE("JsonFields: a field of the wrong type is an error naming it", "[io][json]") {
  const nlohmann::json j = nlohmann::json::parse(R"({"n": 1.5, "x": "big", "flag": 1, "name": 3})");
  const genai::io::JsonFields f(j, "TestConfig", "'dir/config.json'");
  const std::string e_int = error_of([&] { f.get_int("n", 0); });
  CHECK(e_int.find("TestConfig") != std::string::npos);
  CHECK(e_int.find("'dir/config.json'") != std::string::npos);
  CHECK(e_int.find("field 'n' must be an integer") != std::string::npos);
  CHECK(error_of([&] { f.get_real("x", 0); }).find("field 'x' must be a number") != std::string::npos);
  CHECK(error_of([&] { f.get_bool("flag", false); }).find("field 'flag' must be true or false") != std::string::npos);
  CHECK(error_of([&] { f.get_string("name", ""); }).find("field 'name' must be a string") != std::string::npos);
  const nlohmann::json arr = nlohmann::json::parse("[1, 2]");
  CHECK(error_of([&] { genai::io::JsonFields g(arr, "TestConfig", "config.json"); })
            .find("is not a JSON object") != std::string::npos);
}

TEST_CASE("read_json_file: missing file, invalid JSON, a valid file", "[io][json]") {
  TempDir dir;
  const std::string missing = error_of([&] { genai::io::read_json_file(dir.file("none.json"), "load_x", "put it there"); });
  CHECK(missing.find("load_x") != std::string::npos);
  CHECK(missing.find("not found; hint: put it there") != std::string::npos);
  write_text(dir.file("bad.json"), "{\"a\": ");
  CHECK(error_of([&] { genai::io::read_json_file(dir.file("bad.json"), "load_x", ""); }).find("is not valid JSON") !=
        std::string::npos);
  write_text(dir.file("good.json"), R"({"vocab_size": 65})");
  const nlohmann::json j = genai::io::read_json_file(dir.file("good.json"), "load_x", "");
  CHECK(genai::io::JsonFields(j, "X", "good.json").get_int("vocab_size", 0) == 65);
}
