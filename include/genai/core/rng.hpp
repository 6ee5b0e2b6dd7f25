// genai/core/rng.hpp: seedable, reproducible random numbers.
//
// Generator is xoshiro256** seeded through splitmix64. One global default
// generator serves rand/randn/randint/randperm and the initializers;
// manual_seed(n) resets it, so every draw after it is reproducible (on any thread
// count: draws are sequential). Normal samples use the Box-Muller transform. The
// streams differ from PyTorch's: fixtures that need PyTorch's numbers store them.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "genai/config.hpp"

namespace genai {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5EED5EEDull) { manual_seed(seed); }

  void manual_seed(uint64_t seed) {
    uint64_t z = seed;
    for (auto& w : s_) {
      z += 0x9E3779B97F4A7C15ull;
      uint64_t x = z;
      x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
      x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
      w = x ^ (x >> 31);
    }
    has_spare_ = false;
    seed_ = seed;
  }
  uint64_t initial_seed() const { return seed_; }

  /// Next 64 random bits.
  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Standard normal.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(6.283185307179586477 * u2);
    has_spare_ = true;
    return r * std::cos(6.283185307179586477 * u2);
  }
  /// Uniform integer in [0, n), unbiased (n > 0).
  uint64_t below(uint64_t n) {
    GENAI_ASSERT(n > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next_u64();
    while (x >= limit);
    return x % n;
  }

  /// The full state, for checkpoints.
  std::vector<uint64_t> state() const {
    return {s_[0], s_[1], s_[2], s_[3], has_spare_ ? 1u : 0u, bits_of(spare_), seed_};
  }
  void set_state(const std::vector<uint64_t>& st) {
    GENAI_CHECK(st.size() == 7, "Generator::set_state: expected 7 words, got ", st.size());
    for (int i = 0; i < 4; ++i) s_[i] = st[i];
    has_spare_ = st[4] != 0;
    std::memcpy(&spare_, &st[5], sizeof(double));
    seed_ = st[6];
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t bits_of(double d) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof(double));
    return u;
  }
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
  uint64_t seed_ = 0;
};

/// The global generator used when none is passed.
inline Generator& default_generator() {
  static Generator g;
  return g;
}

/// Seeds the global generator (as torch.manual_seed).
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace genai
