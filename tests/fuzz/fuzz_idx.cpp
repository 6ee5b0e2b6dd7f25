// libFuzzer target: IDX files (MNIST / Fashion-MNIST), plain or gzip-compressed,
// through io::read_idx (path API: the bytes go to a memory file) and
// io::idx_to_tensor, once whole and once with `limit` = 1 item.
#include <genai/io/idx.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static genai_fuzz::MemFile file;
  const std::string& path = file.write(data, size);
  // a gzip stream expands at most 1032:1 (plus the header); plain data 1:1
  const uint64_t bound = static_cast<uint64_t>(size) * 1032 + 1024;
  for (int64_t limit : {int64_t(-1), int64_t(1)}) {
    try {
      genai::io::IdxArray a = genai::io::read_idx(path, limit);
      genai_fuzz::require(a.data.size() <= bound, "read_idx returned more bytes than the file can hold");
      genai::Tensor t = genai::io::idx_to_tensor(a);
      genai_fuzz::require(t.numel() == a.numel(), "idx_to_tensor changed the element count");
    } catch (const genai::Error&) {
    }
  }
  return 0;
}
