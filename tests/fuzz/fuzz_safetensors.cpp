// libFuzzer target: safetensors bytes (8-byte length, JSON header, data section)
// through io::load_safetensors_bytes, the parser behind io::load_safetensors.
// Invariant checked: the tensors returned hold no more bytes than 8x the input
// (the widening U8/I8/BOOL -> int64 is the largest growth the format allows).
#include <genai/io/safetensors.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::map<std::string, std::string> meta;
    genai::io::TensorMap m = genai::io::load_safetensors_bytes(data, size, "'fuzz.safetensors'", &meta);
    uint64_t bytes = 0;
    for (const auto& [name, t] : m) {
      genai_fuzz::require(t.is_contiguous(), "a loaded tensor is not contiguous");
      bytes += static_cast<uint64_t>(t.numel()) * t.element_size();
    }
    genai_fuzz::require(bytes <= 8 * static_cast<uint64_t>(size), "loaded tensors exceed 8x the file size");
  } catch (const genai::Error&) {
  }
  return 0;
}
