// libFuzzer target: training checkpoints (io::Checkpoint::load), which read a
// safetensors file from a path and parse the typed metadata ("int.", "float.",
// "str."). The bytes are written to a memory file; odd-sized inputs are read
// through the memory map (mmap_threshold 0), even-sized ones through pread, so
// both of load_safetensors' file paths are fuzzed.
#include <genai/io/checkpoint.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static genai_fuzz::MemFile file;
  const std::string& path = file.write(data, size);
  genai::io::SafetensorsLoadOptions opt;
  opt.mmap_threshold = size % 2 ? 0 : SIZE_MAX;
  try {
    genai::io::Checkpoint ck = genai::io::Checkpoint::load(path, opt);
    for (const auto& [g, tensors] : ck.groups)
      for (const auto& [name, t] : tensors) genai_fuzz::require(t.defined(), "undefined tensor in a checkpoint");
    if (ck.groups.count("rng")) {
      genai::Generator gen(0);
      for (const auto& [name, t] : ck.rng()) {
        try {
          genai::io::load_generator_state(gen, t);
        } catch (const genai::Error&) {
        }
      }
    }
  } catch (const genai::Error&) {
  }
  return 0;
}
