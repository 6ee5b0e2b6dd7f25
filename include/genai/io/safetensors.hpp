// genai/io/safetensors.hpp: read and write the safetensors format
// (https://github.com/huggingface/safetensors), as Hugging Face and PyTorch use it.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the raw little-endian data; offsets are relative to the end of the header.
//
// Reading accepts F64, F32, F16, BF16 (converted to float32), I64, I32, I16, I8, U8
// (converted to int64) and BOOL. Writing stores float32 as F32, float64 as F64,
// int64 as I64 and bool as BOOL. Every structural defect of a file (truncation,
// a header longer than the file, offsets out of range, overlapping or leaving
// gaps, an unknown dtype, a size that does not match the shape, a header that is
// not JSON) raises genai::Error naming the file and the defect; nothing is
// allocated beyond what the file's size implies.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "genai/core/factory.hpp"
#include "genai/core/tensor.hpp"
#include "genai/ops/copy.hpp"

namespace genai {
namespace io {

/// Tensors by name, in name order (as a state dict).
using TensorMap = std::map<std::string, Tensor>;

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
  size_t size;
  Dtype target;
};

inline bool lookup_dtype(const std::string& s, DtypeInfo& out) {
  static const DtypeInfo table[] = {
      {"F64", 8, kFloat64}, {"F32", 4, kFloat32}, {"F16", 2, kFloat32}, {"BF16", 2, kFloat32}, {"I64", 8, kInt64},
      {"I32", 4, kInt64},   {"I16", 2, kInt64},   {"I8", 1, kInt64},    {"U8", 1, kInt64},     {"BOOL", 1, kBool},
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
  if (dt == "F32" || dt == "F64" || dt == "I64" || dt == "BOOL") {
    std::memcpy(t.raw_data(), src, static_cast<size_t>(n) * t.element_size());
    if (dt == "BOOL") {
      bool* p = t.data_ptr<bool>();
      for (int64_t i = 0; i < n; ++i) p[i] = src[i] != 0;  // any non-zero byte is true
    }
    return;
  }
  if (dt == "F16" || dt == "BF16") {
    float* p = t.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h = read_le<uint16_t>(src + 2 * i);
      p[i] = dt == "F16" ? half_to_float(h) : bf16_to_float(h);
    }
    return;
  }
  int64_t* p = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (dt == "I32") p[i] = read_le<int32_t>(src + 4 * i);
    else if (dt == "I16") p[i] = read_le<int16_t>(src + 2 * i);
    else if (dt == "I8") p[i] = static_cast<int8_t>(src[i]);
    else p[i] = src[i];  // U8
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

}  // namespace detail

/// Parses safetensors bytes (`what` names the source in errors). Fills `metadata`
/// with the "__metadata__" entries when given.
inline TensorMap load_safetensors_bytes(const unsigned char* data, size_t size, const std::string& what,
                                        std::map<std::string, std::string>* metadata = nullptr) {
  auto fail = [&](const std::string& msg) { GENAI_FAIL("safetensors: ", what, ": ", msg); };
  if (size < 8) fail("file is " + std::to_string(size) + " bytes, too short for the 8-byte header length");
  uint64_t n = detail::read_le<uint64_t>(data);
  if (n > size - 8)
    fail("header length " + std::to_string(n) + " exceeds the file size (" + std::to_string(size) + " bytes)");
  if (n == 0) fail("empty JSON header");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(data + 8, data + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail("header is not a JSON object");
  const unsigned char* body = data + 8 + n;
  const uint64_t body_size = size - 8 - n;

  struct Entry {
    std::string name, dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail("__metadata__ is not an object");
      if (metadata)
        for (auto m = it.value().begin(); m != it.value().end(); ++m) {
          if (!m.value().is_string()) fail("__metadata__ value for '" + m.key() + "' is not a string");
          (*metadata)[m.key()] = m.value().get<std::string>();
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
    Entry e;
    e.name = it.key();
    e.dtype = v["dtype"].get<std::string>();
    detail::DtypeInfo info{"", 0, kFloat32};
    if (!detail::lookup_dtype(e.dtype, info)) fail(where + " has unsupported dtype '" + e.dtype + "'");
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
    if (e.begin > e.end || e.end > body_size)
      fail(where + " has data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
           "] outside the data section of " + std::to_string(body_size) + " bytes");
    int64_t numel;
    try {
      numel = shape_numel(e.shape);
    } catch (const Error&) {
      fail(where + " has a shape whose element count overflows");
    }
    if (static_cast<uint64_t>(numel) > body_size || static_cast<uint64_t>(numel) * info.size != e.end - e.begin)
      fail(where + " of shape " + shape_str(e.shape) + " and dtype " + e.dtype + " needs " +
           std::to_string(static_cast<uint64_t>(numel) * info.size) + " bytes but its data_offsets span " +
           std::to_string(e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // the data section must be covered exactly, without overlaps
  std::vector<const Entry*> sorted;
  for (const auto& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  for (const Entry* e : sorted) {
    if (e->begin < pos) fail("tensor '" + e->name + "' overlaps the data of another tensor");
    if (e->begin > pos) fail("the data section has a gap before tensor '" + e->name + "'");
    pos = e->end;
  }
  if (pos != body_size)
    fail("the data section is " + std::to_string(body_size) + " bytes but the tensors cover " + std::to_string(pos));

  TensorMap out;
  for (const auto& e : entries) {
    detail::DtypeInfo info{"", 0, kFloat32};
    detail::lookup_dtype(e.dtype, info);
    Tensor t = empty(e.shape, info.target);
    detail::decode(e.dtype, body + e.begin, t.numel(), t);
    out.emplace(e.name, std::move(t));
  }
  return out;
}

/// Reads every tensor of a safetensors file.
inline TensorMap load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  GENAI_CHECK(f.good(), "safetensors: cannot open '", path, "'");
  std::streamsize size = f.tellg();
  GENAI_CHECK(size >= 0, "safetensors: cannot read the size of '", path, "'");
  f.seekg(0);
  std::vector<unsigned char> buf(static_cast<size_t>(size));
  GENAI_CHECK(f.read(reinterpret_cast<char*>(buf.data()), size).good() || size == 0, "safetensors: cannot read '", path,
              "'");
  return load_safetensors_bytes(buf.data(), buf.size(), "'" + path + "'", metadata);
}

/// The bytes of a safetensors file holding `tensors` (and optional string metadata).
inline std::vector<unsigned char> safetensors_bytes(const TensorMap& tensors,
                                                    const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t off = 0;
  std::vector<Tensor> order;
  for (const auto& [name, t] : tensors) {
    GENAI_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    GENAI_CHECK(name != "__metadata__", "safetensors: '__metadata__' is reserved and cannot name a tensor");
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    nlohmann::ordered_json e;
    e["dtype"] = detail::stored_name(t.dtype());
    e["shape"] = t.shape();
    e["data_offsets"] = {off, off + nbytes};
    header[name] = e;
    off += nbytes;
    order.push_back(t.contiguous());
  }
  std::string js = header.dump();
  while ((js.size() + 8) % 8 != 0) js.push_back(' ');  // align the data section to 8 bytes
  std::vector<unsigned char> out(8 + js.size() + off);
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

/// Writes `tensors` to a safetensors file (overwriting it).
inline void save_safetensors(const std::string& path, const TensorMap& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  std::vector<unsigned char> bytes = safetensors_bytes(tensors, metadata);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  GENAI_CHECK(f.good(), "safetensors: cannot open '", path, "' for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  GENAI_CHECK(f.good(), "safetensors: write to '", path, "' failed");
}

}  // namespace io
}  // namespace genai
