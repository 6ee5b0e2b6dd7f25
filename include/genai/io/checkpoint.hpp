// genai/io/checkpoint.hpp: training checkpoints in one safetensors file, written
// atomically so that a crash never leaves a half-written checkpoint.
//
// A Checkpoint bundles named groups of tensors -- "model" (the state dict),
// "optim" (optimizer state), "sched" (LR schedule), "rng" (generator states), or
// any other name without a '.' -- with typed metadata (ints such as step and
// epoch, floats such as the best loss, strings). It is stored as a plain
// safetensors file that PyTorch / Hugging Face tools can read: tensor
// "<group>.<name>" (e.g. "model.encoder.weight") and string metadata
// "int.<key>", "float.<key>" (shortest round-trip decimal, "inf"/"nan" allowed),
// "str.<key>", plus "genai.checkpoint" = "1" and "format" = "pt".
//
// save() writes through io::write_file_atomic (temporary file, fsync, rename,
// fsync of the directory): readers and a resumed run see the previous checkpoint
// or the complete new one. load() splits the file back into groups and metadata.
//
// generator_state_tensor / load_generator_state store a genai::Generator's state
// (Generator::state(), 7 uint64 words) as an int64 tensor of shape (7,), the bits
// reinterpreted (two's complement), so a resumed run draws the same numbers.
// Reference: PyTorch's habit of torch.save({"model": ..., "optimizer": ...,
// "epoch": ...}); the difference is the single safetensors file (no pickle).
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "genai/core/factory.hpp"
#include "genai/core/rng.hpp"
#include "genai/io/safetensors.hpp"

namespace genai {
namespace io {

/// A generator's full state as an int64 tensor (7,) (uint64 words bit-cast).
inline Tensor generator_state_tensor(const Generator& gen) {
  std::vector<uint64_t> st = gen.state();
  Tensor t = empty({static_cast<int64_t>(st.size())}, kInt64);
  std::memcpy(t.raw_data(), st.data(), st.size() * sizeof(uint64_t));
  return t;
}

/// Restores a generator from a tensor made by generator_state_tensor.
inline void load_generator_state(Generator& gen, const Tensor& state) {
  GENAI_CHECK(state.defined(), "load_generator_state: the state tensor is undefined");
  const size_t words = gen.state().size();
  GENAI_CHECK(state.dtype() == kInt64 && state.dim() == 1 && state.numel() == static_cast<int64_t>(words),
              "load_generator_state: expected an int64 tensor of shape (", words, ",), got ",
              dtype_name(state.dtype()), " ", shape_str(state.shape()),
              "; hint: store it with generator_state_tensor");
  Tensor c = state.contiguous();
  std::vector<uint64_t> st(words);
  std::memcpy(st.data(), c.raw_data(), words * sizeof(uint64_t));
  gen.set_state(st);
}

/// Tensor groups and typed metadata saved to / loaded from one safetensors file.
class Checkpoint {
 public:
  /// Tensor groups by name ("model", "optim", "sched", "rng", ...); no '.' in a group name.
  std::map<std::string, TensorMap> groups;
  std::map<std::string, int64_t> ints;       // step, epoch, ...
  std::map<std::string, double> floats;      // best_loss, lr, ...
  std::map<std::string, std::string> strings;  // run name, config, ...

  TensorMap& group(const std::string& name) { return groups[name]; }
  /// A group that must exist; throws naming the groups present.
  const TensorMap& group(const std::string& name) const {
    auto it = groups.find(name);
    if (it == groups.end()) GENAI_FAIL("Checkpoint: no tensor group '", name, "' (groups: ", group_names(), ")");
    return it->second;
  }
  TensorMap& model() { return groups["model"]; }
  TensorMap& optim() { return groups["optim"]; }
  TensorMap& sched() { return groups["sched"]; }
  TensorMap& rng() { return groups["rng"]; }
  const TensorMap& model() const { return group("model"); }
  const TensorMap& optim() const { return group("optim"); }
  const TensorMap& sched() const { return group("sched"); }
  const TensorMap& rng() const { return group("rng"); }

  /// Stores a generator's state as rng()[name].
  void set_generator(const std::string& name, const Generator& gen) { rng()[name] = generator_state_tensor(gen); }
  /// Restores a generator from rng()[name]; throws when absent.
  void restore_generator(const std::string& name, Generator& gen) const {
    const TensorMap& r = group("rng");
    auto it = r.find(name);
    GENAI_CHECK(it != r.end(), "Checkpoint: no generator state 'rng.", name, "'");
    load_generator_state(gen, it->second);
  }

  /// Metadata that must exist; each throws naming the missing key.
  int64_t get_int(const std::string& key) const { return get(ints, key, "int"); }
  double get_float(const std::string& key) const { return get(floats, key, "float"); }
  const std::string& get_string(const std::string& key) const { return get(strings, key, "string"); }
  /// Metadata with a default for absent keys.
  int64_t get_int(const std::string& key, int64_t def) const {
    auto it = ints.find(key);
    return it == ints.end() ? def : it->second;
  }
  double get_float(const std::string& key, double def) const {
    auto it = floats.find(key);
    return it == floats.end() ? def : it->second;
  }

  /// Writes the checkpoint atomically to `path` (see the header comment).
  void save(const std::string& path) const {
    TensorMap all;
    for (const auto& [g, tensors] : groups) {
      check_group_name(g);
      for (const auto& [name, t] : tensors) {
        GENAI_CHECK(t.defined(), "Checkpoint::save: tensor '", g, ".", name, "' is undefined");
        all.emplace(g + "." + name, t.detach());
      }
    }
    std::map<std::string, std::string> meta{{"format", "pt"}, {"genai.checkpoint", "1"}};
    for (const auto& [k, v] : ints) meta["int." + k] = std::to_string(v);
    for (const auto& [k, v] : floats) {
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that reads back exactly
      meta["float." + k] = std::string(buf, r.ptr);
    }
    for (const auto& [k, v] : strings) meta["str." + k] = v;
    save_safetensors(path, all, meta);
  }

  /// Reads a checkpoint written by save().
  static Checkpoint load(const std::string& path, const SafetensorsLoadOptions& options = {}) {
    std::map<std::string, std::string> meta;
    TensorMap all = load_safetensors(path, &meta, options);
    auto ver = meta.find("genai.checkpoint");
    GENAI_CHECK(ver != meta.end(), "Checkpoint::load: '", path,
                "' is a safetensors file but not a genai checkpoint (no 'genai.checkpoint' metadata); "
                "hint: read plain tensor files with io::load_safetensors");
    GENAI_CHECK(ver->second == "1", "Checkpoint::load: '", path, "' has checkpoint format version '", ver->second,
                "', this genai reads version 1");
    Checkpoint ck;
    for (auto& [name, t] : all) {
      size_t dot = name.find('.');
      GENAI_CHECK(dot != std::string::npos && dot > 0, "Checkpoint::load: '", path, "': tensor '", name,
                  "' has no '<group>.' prefix");
      ck.groups[name.substr(0, dot)].emplace(name.substr(dot + 1), t);
    }
    for (const auto& kv : meta) {
      const std::string& k = kv.first;  // named variables, not structured bindings:
      const std::string& v = kv.second;  // clang < 16 cannot capture those in the lambda
      auto fail = [&](const char* type) {
        GENAI_FAIL("Checkpoint::load: '", path, "': metadata '", k, "' = '", v, "' is not a valid ", type);
      };
      if (k.rfind("int.", 0) == 0) {
        int64_t x = 0;
        auto r = std::from_chars(v.data(), v.data() + v.size(), x);
        if (r.ec != std::errc() || r.ptr != v.data() + v.size() || v.empty()) fail("int64");
        ck.ints[k.substr(4)] = x;
      } else if (k.rfind("float.", 0) == 0) {
        double x = 0;
        auto r = std::from_chars(v.data(), v.data() + v.size(), x);
        if (r.ec != std::errc() || r.ptr != v.data() + v.size() || v.empty()) fail("float");
        ck.floats[k.substr(6)] = x;
      } else if (k.rfind("str.", 0) == 0) {
        ck.strings[k.substr(4)] = v;
      }  // other keys ("format", "genai.checkpoint", foreign tools' notes) are not ours
    }
    return ck;
  }

 private:
  static void check_group_name(const std::string& g) {
    GENAI_CHECK(!g.empty() && g.find('.') == std::string::npos, "Checkpoint::save: group name '", g,
                "' must be non-empty and contain no '.'");
  }
  std::string group_names() const {
    std::string s;
    for (const auto& [g, t] : groups) s += (s.empty() ? "" : ", ") + g;
    return s.empty() ? "none" : s;
  }
  template <class M>
  static const typename M::mapped_type& get(const M& m, const std::string& key, const char* type) {
    auto it = m.find(key);
    if (it == m.end()) {
      std::string have;
      for (const auto& kv : m) have += (have.empty() ? "" : ", ") + kv.first;
      GENAI_FAIL("Checkpoint: no ", type, " metadata '", key, "' (present: ", have.empty() ? "none" : have, ")");
    }
    return it->second;
  }
};

}  // namespace io
}  // namespace genai
