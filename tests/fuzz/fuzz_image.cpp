// libFuzzer target: the image loader path (io::decode_image, behind io::load_image):
// PNG, JPEG and the other formats stb_image reads. stb_image is compiled into this
// target from Debian's stb_image.h (stb_image_impl.c), instrumented, so libFuzzer
// sees its coverage and the sanitizers check it. The last byte of the input also
// picks the channel conversion (0 = as stored, 1..4).
#include <genai/io/image.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int channels = size ? data[size - 1] % 5 : 0;
  try {
    genai::Tensor t = genai::io::decode_image(data, size, "'fuzz.img'", channels);
    genai_fuzz::require(t.dim() == 3 && t.size(0) >= 1 && t.size(0) <= 4, "decoded image is not (C, H, W)");
    const uint64_t pixels = static_cast<uint64_t>(t.size(1)) * static_cast<uint64_t>(t.size(2));
    genai_fuzz::require(pixels <= size * genai::io::kImageMaxPixelsPerByte + genai::io::kImageMinPixelLimit,
                        "decoded more pixels than the file size allows");
  } catch (const genai::Error&) {
  }
  return 0;
}
