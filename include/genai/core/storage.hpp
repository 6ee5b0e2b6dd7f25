// genai/core/storage.hpp: the reference-counted, 64-byte-aligned memory a tensor views,
// and the caching allocator behind it.
//
// Several tensors (views) may share one Storage. The storage also carries the
// version counter that autograd uses to detect in-place writes to saved tensors
// (as PyTorch's VariableVersion, shared by a tensor and its views).
//
// Allocation goes through a process-wide cache of freed blocks, bucketed in size
// classes (8 per power of two, so at most 12.5% is wasted). A training step
// allocates the same sizes every iteration; reusing blocks avoids the page
// faults a fresh large allocation costs (about a third of the time of a
// memory-bound op on 64 MB). The cache holds at most GENAI_CACHE_MB megabytes
// (default 2048); genai::empty_cache() releases it. Under AddressSanitizer the
// cache is off, so that use-after-free is still caught.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "genai/config.hpp"

namespace genai {

/// The largest allocation genai attempts (64 TiB): larger requests, and sizes that
/// wrapped around in a caller's arithmetic, throw genai::Error instead of reaching malloc.
constexpr size_t kMaxAllocBytes = size_t(1) << 46;

namespace detail {
constexpr size_t kAlignment = 64;

inline void* aligned_malloc(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  GENAI_CHECK(nbytes <= kMaxAllocBytes, "allocation of ", nbytes, " bytes exceeds genai's limit of ", kMaxAllocBytes,
              " bytes (64 TiB); hint: the size probably overflowed or came from a corrupt file");
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) GENAI_FAIL("out of memory: could not allocate ", nbytes, " bytes");
  return p;
}

/// The caching allocator: freed blocks wait in per-size-class lists for reuse.
class BlockCache {
 public:
  static BlockCache& instance() {
    static BlockCache* c = new BlockCache();  // never destroyed: storages may outlive static destruction
    return *c;
  }

  /// Size class of n bytes: the allocation size actually used.
  static size_t class_size(size_t n) {
    if (n <= 256) return (n + 63) / 64 * 64;
    int msb = 63 - __builtin_clzll(static_cast<unsigned long long>(n - 1));  // 2^msb < n <= 2^(msb+1)
    size_t step = size_t(1) << (msb - 2 > 6 ? msb - 2 : 6);                   // 8 classes per octave
    return (n + step - 1) / step * step;
  }

  void* allocate(size_t n, size_t& got) {
    if (n == 0) {
      got = 0;
      return nullptr;
    }
    GENAI_CHECK(n <= kMaxAllocBytes, "allocation of ", n, " bytes exceeds genai's limit of ", kMaxAllocBytes,
                " bytes (64 TiB); hint: the size probably overflowed or came from a corrupt file");
    got = class_size(n);  // cannot overflow below the limit
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto& list = lists_[key(got)];
      for (size_t i = list.size(); i-- > 0;) {
        if (list[i].size == got) {
          void* p = list[i].ptr;
          list[i] = list.back();
          list.pop_back();
          cached_ -= got;
          return p;
        }
      }
    }
    return aligned_malloc(got);
  }

  void release(void* p, size_t got) {
    if (!p) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (cached_ + got <= limit_) {
        lists_[key(got)].push_back({p, got});
        cached_ += got;
        return;
      }
    }
    std::free(p);
  }

  /// Frees every cached block.
  void clear() {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& l : lists_)
      for (auto& b : l) std::free(b.ptr);
    for (auto& l : lists_) l.clear();
    cached_ = 0;
  }
  size_t cached_bytes() {
    std::lock_guard<std::mutex> lk(mu_);
    return cached_;
  }

 private:
  struct Block {
    void* ptr;
    size_t size;
  };
  static constexpr size_t kLists = 1024;
  static size_t key(size_t s) { return (s / 64) % kLists; }
  BlockCache() {
    size_t mb = 2048;
    if (const char* env = std::getenv("GENAI_CACHE_MB")) mb = static_cast<size_t>(std::strtoull(env, nullptr, 10));
    limit_ = mb << 20;
#if defined(__SANITIZE_ADDRESS__)
    limit_ = 0;  // under AddressSanitizer every block is really freed, so use-after-free is caught
#endif
  }
  std::mutex mu_;
  std::vector<Block> lists_[kLists];
  size_t cached_ = 0;
  size_t limit_ = 0;
};
}  // namespace detail

/// Releases the memory held by genai's allocation cache (as torch.cuda.empty_cache).
inline void empty_cache() { detail::BlockCache::instance().clear(); }

class Storage {
 public:
  /// Allocates `nbytes` of uninitialized, 64-byte-aligned memory.
  explicit Storage(size_t nbytes) : nbytes_(nbytes) { data_ = detail::BlockCache::instance().allocate(nbytes, capacity_); }
  /// Wraps memory owned elsewhere (a memory map, a caller's buffer); `owner` keeps it alive.
  Storage(void* data, size_t nbytes, std::shared_ptr<void> owner)
      : data_(data), nbytes_(nbytes), owner_(std::move(owner)), external_(true) {}
  ~Storage() {
    if (!external_) detail::BlockCache::instance().release(data_, capacity_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  uint32_t version() const { return version_; }
  void bump_version() { ++version_; }
  /// Sets the version (a tensor moved to this buffer by a recorded in-place op keeps counting up).
  void set_version(uint32_t v) { version_ = v; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t capacity_ = 0;
  std::shared_ptr<void> owner_;
  bool external_ = false;
  uint32_t version_ = 0;
};

}  // namespace genai
