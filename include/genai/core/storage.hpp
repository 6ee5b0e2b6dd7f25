// genai/core/storage.hpp: the reference-counted, 64-byte-aligned memory a tensor views.
//
// Several tensors (views) may share one Storage. The storage also carries the
// version counter that autograd uses to detect in-place writes to saved tensors
// (as PyTorch's VariableVersion, shared by a tensor and its views).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "genai/config.hpp"

namespace genai {

namespace detail {
constexpr size_t kAlignment = 64;

inline void* aligned_malloc(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  GENAI_CHECK(rounded >= nbytes, "allocation of ", nbytes, " bytes overflows");
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) GENAI_FAIL("out of memory: could not allocate ", nbytes, " bytes");
  return p;
}
}  // namespace detail

class Storage {
 public:
  /// Allocates `nbytes` of uninitialized, 64-byte-aligned memory.
  explicit Storage(size_t nbytes) : data_(detail::aligned_malloc(nbytes)), nbytes_(nbytes) {}
  /// Wraps memory owned elsewhere (a memory map, a caller's buffer); `owner` keeps it alive.
  Storage(void* data, size_t nbytes, std::shared_ptr<void> owner)
      : data_(data), nbytes_(nbytes), owner_(std::move(owner)), external_(true) {}
  ~Storage() {
    if (!external_) std::free(data_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  uint32_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  std::shared_ptr<void> owner_;
  bool external_ = false;
  uint32_t version_ = 0;
};

}  // namespace genai
