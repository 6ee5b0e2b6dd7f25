// genai/io/image.hpp: images in and out, as torchvision does it.
//
// - load_image / decode_image: PNG, JPEG (and the other formats stb_image reads:
//   BMP, GIF, TGA, PSD, HDR, PIC, PNM) into a float32 tensor (C, H, W) in [0, 1]
//   (as torchvision.transforms.functional.to_tensor); 16-bit PNGs keep their
//   precision (value / 65535).
// - save_png / encode_png: a (C, H, W) or (H, W) tensor in [0, 1] to an 8-bit PNG,
//   rounding as torchvision.utils.save_image (x * 255 + 0.5, clamped to [0, 255]).
// - normalize_to_neg_one_to_one / unnormalize_to_zero_to_one: [0, 1] <-> [-1, 1],
//   the ranges of image data and of GAN / diffusion model outputs (names from
//   lucidrains' denoising-diffusion-pytorch); differentiable.
// - make_grid: torchvision.utils.make_grid (same arguments and defaults).
// - resize: bilinear, as torch.nn.functional.interpolate(mode="bilinear",
//   align_corners=False, antialias=False); for data preparation (no autograd).
//
// Decoding and encoding use stb (stb_image, stb_image_write) as a compiled library:
// Debian's libstb-dev provides the headers and libstb.so, which the genai CMake
// target links; this header therefore never defines STB_IMAGE_IMPLEMENTATION.
// Differences from torchvision: no PIL; make_grid and resize take floating-point
// tensors only, and make_grid does not accept a list of tensors (stack them).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#else
#include <stb_image.h>
#include <stb_image_write.h>
#endif

#include "genai/core/factory.hpp"
#include "genai/core/tensor.hpp"
#include "genai/io/file.hpp"
#include "genai/ops/copy.hpp"
#include "genai/ops/elementwise.hpp"

namespace genai {
namespace io {

/// The most pixels an image file may declare per byte of file: PNG's deflate expands
/// at most 1032:1 and a 1-bit greyscale PNG holds 8 pixels per byte, hence 8256
/// (JPEG, GIF, TGA, PSD and HDR compress less; only PIC's 16-bit run lengths could in
/// theory do more, and such files are refused). Larger claims are corrupt files or
/// decompression bombs and are refused before anything is allocated.
constexpr uint64_t kImageMaxPixelsPerByte = 8256;
/// Pixels any file may declare regardless of its size (a 256 x 256 image).
constexpr uint64_t kImageMinPixelLimit = 65536;

namespace detail {

/// Debian's stb_image (2.27) reads the width, height and maximum value of a binary
/// PNM (P5 / P6) into an int without an overflow check (undefined behaviour, found
/// by fuzzing; stb 2.28 fixed it). This walks the header as stb does and throws when
/// a number has more than 8 digits, before stb sees it.
inline void check_pnm_header(const unsigned char* data, size_t size, const std::string& what) {
  if (size < 2 || data[0] != 'P' || (data[1] != '5' && data[1] != '6')) return;
  size_t i = 2;
  auto space = [](unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  for (int field = 0; field < 3; ++field) {
    for (;;) {  // whitespace and '#' comments
      while (i < size && space(data[i])) ++i;
      if (i >= size || data[i] != '#') break;
      while (i < size && data[i] != '\n' && data[i] != '\r') ++i;
    }
    size_t digits = 0;
    while (i < size && data[i] >= '0' && data[i] <= '9') ++i, ++digits;
    GENAI_CHECK(digits <= 8, "load_image: cannot decode ", what, ": its PNM header holds a ",
                field == 0 ? "width" : field == 1 ? "height" : "maximum value", " of ", digits,
                " digits (the file is corrupt)");
  }
}

/// Debian's stb_image (2.27) does not check that the 16 code-length counts of a JPEG
/// Huffman table (DHT segment) sum to at most 256, and then writes past its 257-byte
/// and 256-byte tables (memory corruption, found by fuzzing; stb 2.28 checks it). This
/// walks the JPEG's segments as stb reads them (length-prefixed segments, entropy-coded
/// data up to the next marker) and throws on such a table, before stb sees it.
inline void check_jpeg_huffman_tables(const unsigned char* d, size_t size, const std::string& what) {
  size_t s = 0;  // stb accepts fill bytes (0xFF) before the SOI marker, as before any marker
  while (s < size && d[s] == 0xFF) ++s;
  if (s == 0 || s >= size || d[s] != 0xD8) return;
  size_t i = s + 1;
  while (i + 1 < size) {
    if (d[i] != 0xFF) {  // entropy-coded data, or junk that stb skips byte by byte
      ++i;
      continue;
    }
    const unsigned char m = d[i + 1];
    if (m == 0xFF) {  // fill byte before a marker
      ++i;
      continue;
    }
    if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) {  // stuffed 0xFF, TEM, SOI, RSTn
      i += 2;
      continue;
    }
    if (m == 0xD9 || i + 4 > size) return;  // EOI, or no room for a segment length
    const size_t len = static_cast<size_t>(d[i + 2]) << 8 | d[i + 3];  // counts its own 2 bytes
    if (m == 0xC4) {  // DHT: tables of (class/id byte, 16 counts, the values), read as stb does
      size_t p = i + 4;
      int64_t left = static_cast<int64_t>(len) - 2;
      while (left > 0) {
        unsigned n = 0;
        for (size_t k = 1; k <= 16; ++k) n += p + k < size ? d[p + k] : 0;
        GENAI_CHECK(n <= 256, "load_image: cannot decode ", what, ": a JPEG Huffman table (DHT segment at byte ", i,
                    ") declares ", n, " codes, more than 256 (the file is corrupt)");
        p += 17 + n;
        left -= 17 + static_cast<int64_t>(n);
      }
    }
    i += 2 + len;
  }
}

/// stb_image (2.27) allocates the buffer for a PNG's IDAT chunk from the length the
/// chunk declares before reading it, so a 100-byte file declaring a 1 GB chunk
/// allocates 1 GB (found by fuzzing). This walks the PNG's chunks up to IEND and
/// throws when one declares more bytes than the file has left, or when the file ends
/// before IEND (stb fails there too, with a less clear reason).
inline void check_png_chunks(const unsigned char* d, size_t size, const std::string& what) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size < 8 || std::memcmp(d, sig, 8) != 0) return;
  size_t pos = 8;
  while (pos + 8 <= size) {
    const uint64_t len = uint64_t(d[pos]) << 24 | uint64_t(d[pos + 1]) << 16 | uint64_t(d[pos + 2]) << 8 | d[pos + 3];
    const std::string type(reinterpret_cast<const char*>(d + pos + 4), 4);
    if (type == "IEND") return;
    GENAI_CHECK(len + 12 <= size - pos, "load_image: cannot decode ", what, ": its PNG chunk '", type, "' at byte ", pos,
                " declares ", len, " bytes but the file has ", size - pos - std::min<size_t>(size - pos, 12),
                " left (the file is truncated or corrupt)");
    pos += 12 + static_cast<size_t>(len);
  }
  GENAI_FAIL("load_image: cannot decode ", what, ": the PNG ends at byte ", size,
             " before its IEND chunk (the file is truncated)");
}

}  // namespace detail

/// Decodes an image held in memory into float32 (C, H, W) in [0, 1]. `channels`
/// 0 keeps the file's channels; 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA)
/// converts. `what` names the source in errors.
inline Tensor decode_image(const unsigned char* data, size_t size, const std::string& what, int channels = 0) {
  GENAI_CHECK(channels >= 0 && channels <= 4, "load_image: channels must be 0 (as stored), 1, 2, 3 or 4, got ",
              channels);
  GENAI_CHECK(size <= static_cast<size_t>(INT32_MAX), "load_image: ", what, " is too large for stb_image (", size,
              " bytes)");
  GENAI_CHECK(size > 0, "load_image: cannot decode ", what, ": the file is empty");
  const int len = static_cast<int>(size);
  detail::check_pnm_header(data, size, what);
  detail::check_jpeg_huffman_tables(data, size, what);
  detail::check_png_chunks(data, size, what);
  int w = 0, h = 0, c_file = 0;
  // a decompression bomb (a small file declaring a huge image) is refused before
  // stb allocates the pixels: see kImageMaxPixelsPerByte
  if (stbi_info_from_memory(data, len, &w, &h, &c_file) && w > 0 && h > 0) {
    const uint64_t pixels = static_cast<uint64_t>(w) * static_cast<uint64_t>(h);
    const uint64_t limit = static_cast<uint64_t>(size) * kImageMaxPixelsPerByte + kImageMinPixelLimit;
    GENAI_CHECK(pixels <= limit, "load_image: cannot decode ", what, ": it declares ", w, " x ", h, " pixels, more than a ",
                size, "-byte file can hold (at most ", limit,
                "); the file is corrupt or a decompression bomb");
  }
  const bool sixteen = stbi_is_16_bit_from_memory(data, len) != 0;
  // stb_image 2.27 converts the channels of a 16-bit PNM with its 8-bit routine and
  // returns a buffer half the size it should (a heap overflow when read; found by
  // fuzzing), and does not swap its big-endian samples: refused
  GENAI_CHECK(!(sixteen && data[0] == 'P'), "load_image: cannot decode ", what,
              ": 16-bit PNM files (maximum value above 255) are not supported (stb_image 2.27 misreads them)");
  void* pixels = sixteen ? static_cast<void*>(stbi_load_16_from_memory(data, len, &w, &h, &c_file, channels))
                         : static_cast<void*>(stbi_load_from_memory(data, len, &w, &h, &c_file, channels));
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    GENAI_FAIL("load_image: cannot decode ", what, ": ", reason ? reason : "unknown error",
               " (stb_image reads PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PIC and PNM; the file may be truncated or "
               "corrupt)");
  }
  const int c = channels ? channels : c_file;
  Tensor out;
  try {
    out = empty({c, h, w}, kFloat32);  // (C, H, W)
  } catch (...) {
    stbi_image_free(pixels);
    throw;
  }
  float* dst = out.data_ptr<float>();
  const int64_t hw = static_cast<int64_t>(h) * w;
  for (int64_t p = 0; p < hw; ++p)
    for (int k = 0; k < c; ++k) {
      if (sixteen)
        dst[k * hw + p] = static_cast<float>(static_cast<const uint16_t*>(pixels)[p * c + k]) / 65535.0f;
      else
        dst[k * hw + p] = static_cast<float>(static_cast<const unsigned char*>(pixels)[p * c + k]) / 255.0f;
    }
  stbi_image_free(pixels);
  return out;
}

/// Reads an image file into float32 (C, H, W) in [0, 1]; see decode_image.
inline Tensor load_image(const std::string& path, int channels = 0) {
  std::vector<unsigned char> bytes = read_file(path, "load_image");
  return decode_image(bytes.data(), bytes.size(), "'" + path + "'", channels);
}

/// The bytes of an 8-bit PNG of `img`: (C, H, W) with C in {1, 2, 3, 4} or (H, W),
/// floating point, values in [0, 1] (clamped; NaN is written as 0).
inline std::vector<unsigned char> encode_png(const Tensor& img) {
  GENAI_CHECK(img.defined(), "save_png: the image tensor is undefined");
  GENAI_CHECK(img.dim() == 2 || img.dim() == 3, "save_png: expected an image of shape (C, H, W) or (H, W), got ",
              shape_str(img.shape()), "; hint: use make_grid for a batch (N, C, H, W)");
  Tensor x = img.dim() == 2 ? img.detach().unsqueeze(0) : img.detach();
  const int64_t c = x.size(0), h = x.size(1), w = x.size(2);
  GENAI_CHECK(c >= 1 && c <= 4, "save_png: expected 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA) channels, got shape ",
              shape_str(img.shape()));
  GENAI_CHECK(h > 0 && w > 0 && h <= (1 << 24) && w <= (1 << 24), "save_png: cannot write an image of shape ",
              shape_str(img.shape()));
  GENAI_CHECK(is_floating(x.dtype()), "save_png: expected a float32 or float64 image in [0, 1], got ",
              dtype_name(x.dtype()));
  std::vector<double> v = x.to_vector<double>();  // (C, H, W)
  std::vector<unsigned char> hwc(static_cast<size_t>(c * h * w));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t p = 0; p < h * w; ++p) {
      double q = v[static_cast<size_t>(k * h * w + p)] * 255.0 + 0.5;
      q = std::isnan(q) ? 0.0 : std::min(255.0, std::max(0.0, q));
      hwc[static_cast<size_t>(p * c + k)] = static_cast<unsigned char>(q);
    }
  std::vector<unsigned char> png;
  auto sink = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<unsigned char>*>(ctx);
    out->insert(out->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
  };
  int ok = stbi_write_png_to_func(sink, &png, static_cast<int>(w), static_cast<int>(h), static_cast<int>(c),
                                  hwc.data(), static_cast<int>(w * c));
  GENAI_CHECK(ok != 0, "save_png: stb_image_write could not encode an image of shape ", shape_str(img.shape()));
  return png;
}

/// Writes `img` ((C, H, W) or (H, W) in [0, 1]) as an 8-bit PNG file.
inline void save_png(const std::string& path, const Tensor& img) {
  std::vector<unsigned char> png = encode_png(img);
  write_file(path, png.data(), png.size(), "save_png");
}

/// [0, 1] -> [-1, 1]: img * 2 - 1 (differentiable).
inline Tensor normalize_to_neg_one_to_one(const Tensor& img) { return add(mul(img, 2.0), -1.0); }

/// [-1, 1] -> [0, 1]: (t + 1) / 2 (differentiable; not clamped).
inline Tensor unnormalize_to_zero_to_one(const Tensor& t) { return mul(add(t, 1.0), 0.5); }

/// torchvision.utils.make_grid: lays a batch (N, C, H, W) (or one image (C, H, W)
/// or (H, W)) out as one image (C, rows * (H + padding) + padding, ...), `nrow`
/// images per row; single-channel images become 3-channel. With `normalize`,
/// values are shifted to [0, 1] by `value_range` (clamping first) or by the min
/// and max (of each image with `scale_each`, else of the batch). A batch of one
/// image is returned without padding, as torchvision does. Not recorded by autograd.
inline Tensor make_grid(const Tensor& tensor, int64_t nrow = 8, int64_t padding = 2, bool normalize = false,
                        std::optional<std::pair<double, double>> value_range = std::nullopt, bool scale_each = false,
                        double pad_value = 0.0) {
  GENAI_CHECK(tensor.defined(), "make_grid: the tensor is undefined");
  GENAI_CHECK(tensor.dim() >= 2 && tensor.dim() <= 4, "make_grid: expected (N, C, H, W), (C, H, W) or (H, W), got ",
              shape_str(tensor.shape()));
  GENAI_CHECK(is_floating(tensor.dtype()), "make_grid: expected a float32 or float64 tensor, got ",
              dtype_name(tensor.dtype()));
  GENAI_CHECK(nrow >= 1, "make_grid: nrow must be >= 1, got ", nrow);
  GENAI_CHECK(padding >= 0, "make_grid: padding must be >= 0, got ", padding);
  Tensor x = tensor.detach();
  if (x.dim() == 2) x = x.unsqueeze(0);  // (H, W) -> (1, H, W)
  if (x.dim() == 3) x = x.unsqueeze(0);  // (C, H, W) -> (1, C, H, W)
  const int64_t n = x.size(0), c_in = x.size(1), h = x.size(2), w = x.size(3);
  GENAI_CHECK(n >= 1, "make_grid: the batch is empty (shape ", shape_str(tensor.shape()), ")");
  const int64_t c = c_in == 1 ? 3 : c_in;  // single-channel images are repeated to 3 channels
  std::vector<double> v = x.to_vector<double>();  // (N, C_in, H, W)
  const int64_t img_size = c_in * h * w;
  if (normalize) {
    auto norm = [&](int64_t begin, int64_t end) {  // element range [begin, end)
      double lo, hi;
      if (value_range) {
        lo = value_range->first;
        hi = value_range->second;
      } else {
        lo = INFINITY;
        hi = -INFINITY;
        for (int64_t i = begin; i < end; ++i) {
          lo = std::min(lo, v[static_cast<size_t>(i)]);
          hi = std::max(hi, v[static_cast<size_t>(i)]);
        }
      }
      const double d = std::max(hi - lo, 1e-5);
      for (int64_t i = begin; i < end; ++i) {
        double& e = v[static_cast<size_t>(i)];
        e = (std::min(std::max(e, lo), hi) - lo) / d;  // clamp_(lo, hi).sub_(lo).div_(d)
      }
    };
    if (scale_each)
      for (int64_t k = 0; k < n; ++k) norm(k * img_size, (k + 1) * img_size);
    else
      norm(0, n * img_size);
  }
  auto pixel = [&](int64_t k, int64_t ch, int64_t y, int64_t xx) {
    return v[static_cast<size_t>(((k * c_in + (c_in == 1 ? 0 : ch)) * h + y) * w + xx)];
  };
  if (n == 1) {  // as torchvision: a single image comes back without padding
    std::vector<double> o(static_cast<size_t>(c * h * w));
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) o[static_cast<size_t>((ch * h + y) * w + xx)] = pixel(0, ch, y, xx);
    return from_vector(o, {c, h, w}, tensor.dtype());
  }
  const int64_t xmaps = std::min(nrow, n), ymaps = (n + xmaps - 1) / xmaps;
  const int64_t cell_h = h + padding, cell_w = w + padding;
  const int64_t gh = cell_h * ymaps + padding, gw = cell_w * xmaps + padding;
  std::vector<double> grid(static_cast<size_t>(c * gh * gw), pad_value);  // (C, gh, gw)
  for (int64_t k = 0; k < n; ++k) {
    const int64_t y0 = (k / xmaps) * cell_h + padding, x0 = (k % xmaps) * cell_w + padding;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx)
          grid[static_cast<size_t>((ch * gh + y0 + y) * gw + x0 + xx)] = pixel(k, ch, y, xx);
  }
  return from_vector(grid, {c, gh, gw}, tensor.dtype());
}

/// Bilinear resize of (N, C, H, W), (C, H, W) or (H, W) to (..., height, width), as
/// F.interpolate(mode="bilinear", align_corners=False, antialias=False): no
/// anti-aliasing, so strong downsampling aliases. Not recorded by autograd.
inline Tensor resize(const Tensor& img, int64_t height, int64_t width) {
  GENAI_CHECK(img.defined(), "resize: the image tensor is undefined");
  GENAI_CHECK(img.dim() >= 2 && img.dim() <= 4, "resize: expected (N, C, H, W), (C, H, W) or (H, W), got ",
              shape_str(img.shape()));
  GENAI_CHECK(is_floating(img.dtype()), "resize: expected a float32 or float64 image, got ", dtype_name(img.dtype()));
  GENAI_CHECK(height > 0 && width > 0, "resize: the output size must be positive, got ", height, "x", width);
  const int64_t in_h = img.size(-2), in_w = img.size(-1);
  GENAI_CHECK(in_h > 0 && in_w > 0, "resize: cannot resize an empty image of shape ", shape_str(img.shape()));
  Shape os = img.shape();
  os[os.size() - 2] = height;
  os[os.size() - 1] = width;
  const int64_t planes = img.numel() / (in_h * in_w);
  Tensor x = img.detach().contiguous();
  Tensor out = empty(os, img.dtype());
  // the source coordinate of each output row / column and its two neighbours
  struct Tap {
    int64_t i0, i1;
    double l0, l1;
  };
  auto taps = [](int64_t in, int64_t outn) {
    std::vector<Tap> t(static_cast<size_t>(outn));
    const double scale = static_cast<double>(in) / static_cast<double>(outn);
    for (int64_t o = 0; o < outn; ++o) {
      double src = std::max(0.0, scale * (static_cast<double>(o) + 0.5) - 0.5);
      int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
      int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
      double l1 = src - static_cast<double>(i0);
      t[static_cast<size_t>(o)] = {i0, i1, 1.0 - l1, l1};
    }
    return t;
  };
  const std::vector<Tap> ty = taps(in_h, height), tx = taps(in_w, width);
  dispatch_float(img.dtype(), "resize", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = x.data_ptr<const T>();
    T* dst = out.data_ptr<T>();
    for (int64_t p = 0; p < planes; ++p) {
      const T* s = src + p * in_h * in_w;
      T* d = dst + p * height * width;
      for (int64_t oy = 0; oy < height; ++oy) {
        const Tap& a = ty[static_cast<size_t>(oy)];
        for (int64_t ox = 0; ox < width; ++ox) {
          const Tap& b = tx[static_cast<size_t>(ox)];
          double v = a.l0 * (b.l0 * s[a.i0 * in_w + b.i0] + b.l1 * s[a.i0 * in_w + b.i1]) +
                     a.l1 * (b.l0 * s[a.i1 * in_w + b.i0] + b.l1 * s[a.i1 * in_w + b.i1]);
          d[oy * width + ox] = static_cast<T>(v);
        }
      }
    }
  });
  return out;
}

}  // namespace io
}  // namespace genai
