// genai/io/safetensors.hpp: read and write the safetensors format
// (https://github.com/huggingface/safetensors), as Hugging Face and PyTorch use it.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the raw little-endian data; offsets are relative to the end of the header.
//
// Reading accepts F64, F32, F16, BF16 (F16 and BF16 converted to float32), I64,
// I32, I16, I8, U8 (converted to int64) and BOOL. Writing stores float32 as F32,
// float64 as F64, int64 as I64 and bool as BOOL, in name order, with the header
// padded by spaces to a multiple of 8 bytes (as safetensors.torch.save_file).
//
// Files of at least SafetensorsLoadOptions::mmap_threshold bytes (16 MiB by
// default) are memory-mapped (see io/file.hpp): F32, F64 and I64 tensors whose
// data is aligned to their element size then alias the mapping, without a copy
// (the mapping lives as long as any of them; writing to such a tensor copies the
// touched page, never the file). Other tensors, and every tensor of a smaller
// file, are copied into fresh storage.
//
// Every structural defect raises genai::Error naming the file and the defect, the
// checks of the reference implementation (safetensors' `validate`) and a few
// more: a file shorter than 8 bytes, a header length above 100 MB (the reference's
// limit) or beyond the end of the file, a header that is not a JSON object, a
// duplicate name, an entry without dtype/shape/data_offsets, an unknown dtype, a
// shape whose size differs from its data_offsets span, offsets beyond the data
// section (a truncated file), overlapping offsets, gaps between tensors or after
// the last one. Sizes are checked before anything is allocated, so no allocation
// exceeds what the file's size implies (up to 8x for the widening U8 -> int64).
// Difference from safetensors: writing is atomic (io::write_file_atomic), so a
// file that is memory-mapped by a reader can be safely overwritten.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "genai/core/factory.hpp"
#include "genai/core/tensor.hpp"
#include "genai/io/file.hpp"
#include "genai/ops/copy.hpp"

namespace genai {
namespace io {

/// Tensors by name, in name order (as a state dict).
using TensorMap = std::map<std::string, Tensor>;

/// How load_safetensors reads a file.
struct SafetensorsLoadOptions {
  /// Files of at least this many bytes are memory-mapped and their F32/F64/I64
  /// tensors alias the mapping; 0 maps every file, SIZE_MAX none.
  size_t mmap_threshold = size_t(16) << 20;
};

/// The largest header accepted (as the reference implementation's MAX_HEADER_SIZE).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

namespace detail {

inline float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3FF) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

struct DtypeInfo {
  const char* name;
  size_t size;    // bytes per stored element
  Dtype target;   // dtype of the loaded tensor
  bool native;    // stored bytes are the loaded tensor's bytes (no conversion)
};

inline bool lookup_dtype(const std::string& s, DtypeInfo& out) {
  static const DtypeInfo table[] = {
      {"F64", 8, kFloat64, true}, {"F32", 4, kFloat32, true}, {"F16", 2, kFloat32, false},
      {"BF16", 2, kFloat32, false}, {"I64", 8, kInt64, true}, {"I32", 4, kInt64, false},
      {"I16", 2, kInt64, false},  {"I8", 1, kInt64, false},   {"U8", 1, kInt64, false},
      {"BOOL", 1, kBool, false},  // bytes other than 0/1 must be normalized
  };
  for (const auto& d : table)
    if (s == d.name) {
      out = d;
      return true;
    }
  return false;
}

template <class T>
inline T read_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // x86-64 and aarch64 are little-endian
  return v;
}

/// Converts `n` stored elements of type `dt` at `src` into the tensor's storage.
inline void decode(const std::string& dt, const unsigned char* src, int64_t n, Tensor& t) {
  if (n == 0) return;
  if (dt == "F32" || dt == "F64" || dt == "I64") {
    std::memcpy(t.raw_data(), src, static_cast<size_t>(n) * t.element_size());
    return;
  }
  if (dt == "BOOL") {
    bool* p = t.data_ptr<bool>();
    for (int64_t i = 0; i < n; ++i) p[i] = src[i] != 0;  // any non-zero byte is true
    return;
  }
  if (dt == "F16" || dt == "BF16") {
    float* p = t.data_ptr<float>();
    const bool f16 = dt == "F16";
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h = read_le<uint16_t>(src + 2 * i);
      p[i] = f16 ? half_to_float(h) : bf16_to_float(h);
    }
    return;
  }
  int64_t* p = t.data_ptr<int64_t>();
  if (dt == "I32") {
    for (int64_t i = 0; i < n; ++i) p[i] = read_le<int32_t>(src + 4 * i);
  } else if (dt == "I16") {
    for (int64_t i = 0; i < n; ++i) p[i] = read_le<int16_t>(src + 2 * i);
  } else if (dt == "I8") {
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int8_t>(src[i]);
  } else {  // U8
    for (int64_t i = 0; i < n; ++i) p[i] = src[i];
  }
}

inline const char* stored_name(Dtype d) {
  switch (d) {
    case Dtype::Float32: return "F32";
    case Dtype::Float64: return "F64";
    case Dtype::Int64: return "I64";
    case Dtype::Bool: return "BOOL";
  }
  return "?";
}

/// One validated header entry.
struct StEntry {
  std::string name, dtype;
  DtypeInfo info;
  Shape shape;
  int64_t numel;
  uint64_t begin, end;  // relative to the data section
};

[[noreturn]] inline void st_fail(const std::string& what, const std::string& msg) {
  GENAI_FAIL("safetensors: ", what, ": ", msg);
}

/// Checks the 8-byte length prefix against the file size; returns the header length.
inline uint64_t check_prefix(const unsigned char* data, uint64_t size, const std::string& what) {
  if (size < 8)
    st_fail(what, "file is " + std::to_string(size) +
                      " bytes, too short for the 8-byte header length (truncated or not a safetensors file)");
  uint64_t n = read_le<uint64_t>(data);
  if (n > kSafetensorsMaxHeaderBytes)
    st_fail(what, "header length " + std::to_string(n) + " exceeds the limit of " +
                      std::to_string(kSafetensorsMaxHeaderBytes) +
                      " bytes (not a safetensors file, or a corrupt one)");
  if (n > size - 8)
    st_fail(what, "header length " + std::to_string(n) + " is longer than the file (" + std::to_string(size) +
                      " bytes; truncated file?)");
  if (n == 0) st_fail(what, "empty JSON header");
  return n;
}

/// Parses and validates the JSON header (`n` bytes at `hdr`) against a data
/// section of `body_size` bytes. Fills `metadata` when given.
inline std::vector<StEntry> parse_header(const unsigned char* hdr, uint64_t n, uint64_t body_size,
                                         const std::string& what, std::map<std::string, std::string>* metadata) {
  auto fail = [&](const std::string& msg) { st_fail(what, msg); };
  if (hdr[0] != '{') fail("header is not a JSON object (it does not start with '{')");
  // the parser callback tracks the keys of every open object to catch duplicates,
  // which a JSON parser would otherwise silently resolve to the last one
  std::vector<std::set<std::string>> open_keys;
  std::string duplicate;
  int duplicate_depth = 0;
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) {
      open_keys.emplace_back();
    } else if (ev == E::object_end) {
      if (!open_keys.empty()) open_keys.pop_back();
    } else if (ev == E::key && !open_keys.empty() && duplicate.empty() && parsed.is_string()) {
      if (!open_keys.back().insert(parsed.get<std::string>()).second) {
        duplicate = parsed.get<std::string>();
        duplicate_depth = depth;
      }
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hdr, hdr + n, cb);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail("header is not a JSON object");
  if (!duplicate.empty()) {
    if (duplicate_depth <= 1) fail("the name '" + duplicate + "' appears twice in the header");
    fail("the key '" + duplicate + "' appears twice in one object of the header");
  }

  std::vector<StEntry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail("__metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) fail("__metadata__ value for '" + m.key() + "' is not a string");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const auto& v = it.value();
    const std::string where = "tensor '" + it.key() + "'";
    if (!v.is_object()) fail(where + " is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(where + " has no string 'dtype'");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(where + " has no 'shape' array");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      fail(where + " has no 'data_offsets' pair");
    StEntry e;
    e.name = it.key();
    e.dtype = v["dtype"].get<std::string>();
    if (!lookup_dtype(e.dtype, e.info))
      fail(where + " has unknown or unsupported dtype '" + e.dtype +
           "' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail(where + " has a shape entry that is not a non-negative integer");
      uint64_t dv = d.get<uint64_t>();
      if (dv > (uint64_t(1) << 40)) fail(where + " has an absurd dimension " + std::to_string(dv));
      e.shape.push_back(static_cast<int64_t>(dv));
    }
    for (const auto& o : v["data_offsets"])
      if (!o.is_number_unsigned()) fail(where + " has data_offsets that are not non-negative integers");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    if (e.begin > e.end)
      fail(where + " has data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
           "] that end before they begin");
    if (e.end > body_size)
      fail(where + " has data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
           "] beyond the end of the data section (" + std::to_string(body_size) +
           " bytes): the file is truncated or the offsets are wrong");
    try {
      e.numel = shape_numel(e.shape);
    } catch (const Error&) {
      fail(where + " has a shape " + shape_str(e.shape) + " whose element count overflows");
    }
    if (detail::shape_span_overflows(e.shape))
      fail(where + " has a shape " + shape_str(e.shape) + " whose strides overflow (its non-zero sizes multiply past int64)");
    if (static_cast<uint64_t>(e.numel) > body_size ||
        static_cast<uint64_t>(e.numel) * e.info.size != e.end - e.begin)
      fail(where + " of shape " + shape_str(e.shape) + " and dtype " + e.dtype + " needs " +
           (static_cast<uint64_t>(e.numel) > body_size
                ? std::string("more bytes than the data section holds")
                : std::to_string(static_cast<uint64_t>(e.numel) * e.info.size) + " bytes") +
           " but its data_offsets span " + std::to_string(e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // the data section must be covered exactly, without overlaps or gaps
  std::vector<const StEntry*> sorted;
  for (const auto& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const StEntry* a, const StEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  const StEntry* prev = nullptr;
  for (const StEntry* e : sorted) {
    if (e->begin < pos)
      fail("tensor '" + e->name + "' (bytes [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
           ")) overlaps tensor '" + prev->name + "' (bytes [" + std::to_string(prev->begin) + ", " +
           std::to_string(prev->end) + "))");
    if (e->begin > pos)
      fail("the data section has a gap of " + std::to_string(e->begin - pos) + " bytes at offset " +
           std::to_string(pos) + ", before tensor '" + e->name + "'");
    pos = e->end;
    prev = e;
  }
  if (pos != body_size)
    fail("the data section is " + std::to_string(body_size) + " bytes but the tensors cover only " +
         std::to_string(pos) + " (" + std::to_string(body_size - pos) + " trailing bytes)");
  return entries;
}

/// Tensors from validated entries over the data section `body`. When `owner` is
/// given (it keeps `body` alive and writable), native, aligned tensors alias it.
inline TensorMap materialize(const std::vector<StEntry>& entries, unsigned char* body,
                             const std::shared_ptr<void>& owner) {
  TensorMap out;
  for (const auto& e : entries) {
    unsigned char* src = body + e.begin;
    const bool aligned = reinterpret_cast<uintptr_t>(src) % e.info.size == 0;
    Tensor t;
    if (owner && e.info.native && aligned && e.numel > 0) {
      auto im = std::make_shared<TensorImpl>();
      im->storage = std::make_shared<Storage>(src, static_cast<size_t>(e.end - e.begin), owner);
      im->shape = e.shape;
      im->strides = contiguous_strides(e.shape);
      im->numel = e.numel;
      im->dtype = e.info.target;
      t = Tensor(std::move(im));
    } else {
      t = empty(e.shape, e.info.target);
      decode(e.dtype, src, e.numel, t);
    }
    out.emplace(e.name, std::move(t));
  }
  return out;
}

}  // namespace detail

/// Parses safetensors bytes (`what` names the source in errors), copying every
/// tensor. Fills `metadata` with the "__metadata__" entries when given.
inline TensorMap load_safetensors_bytes(const unsigned char* data, size_t size, const std::string& what,
                                        std::map<std::string, std::string>* metadata = nullptr) {
  uint64_t n = detail::check_prefix(data, size, what);
  auto entries = detail::parse_header(data + 8, n, size - 8 - n, what, metadata);
  return detail::materialize(entries, const_cast<unsigned char*>(data) + 8 + n, nullptr);
}

/// Reads every tensor of a safetensors file (memory-mapped when large; see the
/// header comment). Fills `metadata` with the "__metadata__" entries when given.
inline TensorMap load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr,
                                  const SafetensorsLoadOptions& options = {}) {
  const std::string what = "'" + path + "'";
  uint64_t size;
  {
    detail::Fd fd = detail::open_read(path, "safetensors");
    size = detail::file_size(fd, path, "safetensors");
    if (size < options.mmap_threshold || size < 8) {
      // small file: validate the prefix from its first bytes, then read it whole
      unsigned char prefix[8] = {0};
      if (size >= 8) detail::pread_exact(fd, prefix, 8, 0, path, "safetensors");
      detail::check_prefix(prefix, size, what);
      std::vector<unsigned char> buf(static_cast<size_t>(size));
      detail::pread_exact(fd, buf.data(), buf.size(), 0, path, "safetensors");
      return load_safetensors_bytes(buf.data(), buf.size(), what, metadata);
    }
  }
  std::shared_ptr<MappedFile> map = MappedFile::open(path, "safetensors");
  GENAI_CHECK(map->size() == size, "safetensors: '", path, "' changed size while being opened");
  uint64_t n = detail::check_prefix(map->data(), size, what);
  auto entries = detail::parse_header(map->data() + 8, n, size - 8 - n, what, metadata);
  return detail::materialize(entries, map->data() + 8 + n, std::shared_ptr<void>(map));
}

namespace detail {

/// The padded JSON header of a safetensors file and the contiguous tensors in order.
inline std::string safetensors_header(const TensorMap& tensors, const std::map<std::string, std::string>& metadata,
                                      std::vector<Tensor>& order) {
  // nlohmann::json keeps keys sorted, the order of `tensors` and of the offsets below;
  // using it (not ordered_json) also avoids compiling a second basic_json type
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    GENAI_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    GENAI_CHECK(name != "__metadata__", "safetensors: '__metadata__' is reserved and cannot name a tensor");
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    nlohmann::json e;
    e["dtype"] = stored_name(t.dtype());
    e["shape"] = t.shape();
    e["data_offsets"] = {off, off + nbytes};
    header[name] = e;
    off += nbytes;
    order.push_back(t.contiguous());
  }
  std::string js = header.dump();
  while ((js.size() + 8) % 8 != 0) js.push_back(' ');  // align the data section to 8 bytes
  return js;
}

}  // namespace detail

/// The bytes of a safetensors file holding `tensors` (and optional string metadata).
inline std::vector<unsigned char> safetensors_bytes(const TensorMap& tensors,
                                                    const std::map<std::string, std::string>& metadata = {}) {
  std::vector<Tensor> order;
  std::string js = detail::safetensors_header(tensors, metadata, order);
  size_t body = 0;
  for (const auto& t : order) body += static_cast<size_t>(t.numel()) * t.element_size();
  std::vector<unsigned char> out(8 + js.size() + body);
  uint64_t n = js.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, js.data(), js.size());
  unsigned char* p = out.data() + 8 + js.size();
  for (const auto& t : order) {
    size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (nbytes) std::memcpy(p, t.raw_data(), nbytes);
    p += nbytes;
  }
  return out;
}

/// Writes `tensors` to a safetensors file, atomically (io::write_file_atomic):
/// the file is replaced only once the new content is complete and synced.
inline void save_safetensors(const std::string& path, const TensorMap& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  std::vector<Tensor> order;
  std::string js = detail::safetensors_header(tensors, metadata, order);
  uint64_t n = js.size();
  unsigned char len[8];
  std::memcpy(len, &n, 8);
  std::vector<ConstBytes> chunks{{len, 8}, {js.data(), js.size()}};
  for (const auto& t : order) {
    size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (nbytes) chunks.push_back({t.raw_data(), nbytes});
  }
  try {
    write_file_atomic(path, chunks);
  } catch (const Error& e) {
    GENAI_FAIL("save_safetensors: ", e.message());
  }
}

}  // namespace io
}  // namespace genai
