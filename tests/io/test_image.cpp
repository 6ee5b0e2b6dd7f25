// Tests of image I/O (stb): PNG/JPEG files written by PIL decode to PIL's pixels,
// PNG write/read round trips in a temporary directory, errors for missing and
// corrupt files, and make_grid / resize against torchvision / PyTorch fixtures
// (tests/fixtures/io_torch.safetensors, made by make_io_fixtures.py).
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <cmath>

#include <genai/io/image.hpp>

using namespace genai;
using genai_test::fixture;
using genai_test::TempDir;

namespace {
const char* const kFile = "io_torch.safetensors";

/// Writes the bytes of a U8 fixture tensor to a file.
std::string fixture_file(const TempDir& dir, const std::string& key, const std::string& name) {
  std::vector<int64_t> v = fixture(kFile, key).to_vector<int64_t>();
  std::vector<unsigned char> bytes(v.begin(), v.end());
  std::string path = dir.file(name);
  genai_test::write_bytes(path, bytes);
  return path;
}
}  // namespace

TEST_CASE("load_image decodes PNGs written by PIL to PIL's pixels") {
  TempDir dir;
  Tensor rgb = io::load_image(fixture_file(dir, "png.rgb", "rgb.png"));
  CHECK(rgb.dtype() == kFloat32);
  CHECK(rgb.shape() == Shape{3, 4, 5});  // (C, H, W)
  CHECK_CLOSE(rgb, fixture(kFile, "png.rgb.pixels"), 0, 1e-7);

  std::string la_path = fixture_file(dir, "png.gray_alpha", "la.png");
  Tensor la = io::load_image(la_path);
  CHECK(la.shape() == Shape{2, 3, 2});
  CHECK_CLOSE(la, fixture(kFile, "png.gray_alpha.pixels"), 0, 1e-7);
  // conversions: grey+alpha -> RGBA repeats the grey channel and keeps alpha; -> grey drops alpha
  Tensor rgba = io::load_image(la_path, 4);
  CHECK(rgba.shape() == Shape{4, 3, 2});
  for (int64_t c = 0; c < 3; ++c) CHECK_CLOSE(rgba.select(0, c), la.select(0, 0), 0, 0);
  CHECK_CLOSE(rgba.select(0, 3), la.select(0, 1), 0, 0);
  Tensor grey = io::load_image(la_path, 1);
  CHECK(grey.shape() == Shape{1, 3, 2});
  CHECK_CLOSE(grey.select(0, 0), la.select(0, 0), 0, 0);
}

TEST_CASE("load_image decodes a JPEG written by PIL close to PIL's decoding") {
  TempDir dir;
  Tensor img = io::load_image(fixture_file(dir, "jpeg.rgb", "smooth.jpg"));
  CHECK(img.shape() == Shape{3, 8, 8});
  // stb_image and libjpeg use different IDCTs: allow 2 levels of 255
  CHECK_CLOSE(img, fixture(kFile, "jpeg.rgb.pixels"), 0, 2.0 / 255 + 1e-6);
}

TEST_CASE("save_png and load_image round trip in a temporary directory") {
  TempDir dir;
  manual_seed(11);
  for (int64_t c : {1, 2, 3, 4}) {
    INFO("channels " << c);
    Tensor x = rand({c, 5, 7});
    std::string path = dir.file("img" + std::to_string(c) + ".png");
    io::save_png(path, x);
    Tensor y = io::load_image(path);
    REQUIRE(y.shape() == x.shape());
    // 8-bit quantization as torchvision's save_image: floor(x * 255 + 0.5)
    std::vector<float> xv = x.to_vector(), yv = y.to_vector();
    for (size_t i = 0; i < xv.size(); ++i) CHECK(yv[i] == static_cast<float>(std::floor(xv[i] * 255.0 + 0.5)) / 255.0f);
  }
  // (H, W) is a grey image; out-of-range values are clamped; NaN becomes 0; float64 works
  Tensor g = tensor({-0.5, 0.0, 0.5, 1.0, 1.5, NAN}, {2, 3}, kFloat64);
  io::save_png(dir.file("g.png"), g);
  Tensor gy = io::load_image(dir.file("g.png"));
  CHECK(gy.shape() == Shape{1, 2, 3});
  CHECK(gy.to_vector() == std::vector<float>{0, 0, 128 / 255.f, 1, 1, 0});
  // the PNG bytes themselves decode back
  std::vector<unsigned char> png = io::encode_png(g);
  CHECK(png.size() > 8);
  CHECK(png[1] == 'P');
  CHECK(io::decode_image(png.data(), png.size(), "memory").shape() == Shape{1, 2, 3});
}

TEST_CASE("load_image errors name the file and stb's reason") {
  TempDir dir;
  CHECK_ERROR_CONTAINS(io::load_image(dir.file("missing.png")), "load_image", dir.file("missing.png"),
                       "No such file or directory");
  // a truncated PNG
  io::save_png(dir.file("full.png"), rand({3, 16, 16}));
  auto bytes = genai_test::read_bytes(dir.file("full.png"));
  genai_test::write_bytes(dir.file("trunc.png"), std::vector<unsigned char>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  std::string msg = genai_test::error_of([&] { io::load_image(dir.file("trunc.png")); });
  CHECK_THAT(msg, Catch::Matchers::Contains(dir.file("trunc.png")));
  CHECK_THAT(msg, Catch::Matchers::Contains("cannot decode"));
  // stb's reason follows "cannot decode '<path>': "
  std::string after = msg.substr(msg.find("': ") + 3);
  CHECK(after.rfind(" (stb_image", 0) != 0);  // a non-empty reason precedes the format list
  // not an image at all, and an empty file
  genai_test::write_text(dir.file("text.png"), "this is not an image");
  CHECK_ERROR_CONTAINS(io::load_image(dir.file("text.png")), dir.file("text.png"), "cannot decode");
  genai_test::write_text(dir.file("empty.png"), "");
  CHECK_ERROR_CONTAINS(io::load_image(dir.file("empty.png")), dir.file("empty.png"), "empty");
  CHECK_ERROR_CONTAINS(io::load_image(dir.file("full.png"), 5), "channels must be");
}

TEST_CASE("save_png rejects bad shapes, dtypes and paths") {
  TempDir dir;
  CHECK_ERROR_CONTAINS(io::save_png(dir.file("a.png"), zeros({5, 4, 4})), "save_png", "(5, 4, 4)");
  CHECK_ERROR_CONTAINS(io::save_png(dir.file("a.png"), zeros({2, 3, 4, 4})), "save_png", "(2, 3, 4, 4)", "make_grid");
  CHECK_ERROR_CONTAINS(io::save_png(dir.file("a.png"), zeros({3, 4, 4}, kInt64)), "save_png", "int64");
  CHECK_ERROR_CONTAINS(io::save_png(dir.file("a.png"), zeros({3, 0, 4})), "save_png", "(3, 0, 4)");
  CHECK_ERROR_CONTAINS(io::save_png(dir.file("no/such/dir.png"), zeros({3, 4, 4})), "save_png",
                       dir.file("no/such/dir.png"), "No such file or directory");
}

TEST_CASE("[0, 1] <-> [-1, 1] conversions are inverse and differentiable") {
  Tensor x = tensor({0.0, 0.25, 1.0}, kFloat64).requires_grad_();
  Tensor y = io::normalize_to_neg_one_to_one(x);
  CHECK(y.to_vector<double>() == std::vector<double>{-1.0, -0.5, 1.0});
  CHECK(io::unnormalize_to_zero_to_one(y).to_vector<double>() == x.to_vector<double>());
  y.sum().backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
}

TEST_CASE("make_grid matches torchvision.utils.make_grid") {
  for (Dtype dt : {kFloat64, kFloat32}) {
    const double tol = dt == kFloat64 ? 1e-12 : 1e-6;
    INFO(dtype_name(dt));
    Tensor g = fixture(kFile, "grid.input").to(dt);
    CHECK_CLOSE(io::make_grid(g), fixture(kFile, "grid.default"), tol, tol);
    CHECK_CLOSE(io::make_grid(g, 2, 1, false, std::nullopt, false, 0.5), fixture(kFile, "grid.nrow2_pad1_val0.5"),
                tol, tol);
    CHECK_CLOSE(io::make_grid(g, 3, 2, true), fixture(kFile, "grid.nrow3_normalize"), tol, tol);
    CHECK_CLOSE(io::make_grid(g, 8, 2, true, std::make_pair(-1.0, 1.0)), fixture(kFile, "grid.range"), tol, tol);
    CHECK_CLOSE(io::make_grid(g, 4, 0, true, std::nullopt, true), fixture(kFile, "grid.scale_each"), tol, tol);
    CHECK_CLOSE(io::make_grid(fixture(kFile, "grid.gray_input").to(dt), 2), fixture(kFile, "grid.gray"), tol, tol);
    CHECK_CLOSE(io::make_grid(g.narrow(0, 0, 1), 8, 3), fixture(kFile, "grid.single"), tol, tol);
    CHECK(io::make_grid(g).dtype() == dt);
  }
  CHECK_ERROR_CONTAINS(io::make_grid(zeros({2, 3, 4, 4}), 0), "make_grid", "nrow");
  CHECK_ERROR_CONTAINS(io::make_grid(zeros({1, 2, 3, 4, 4})), "make_grid", "(1, 2, 3, 4, 4)");
  CHECK_ERROR_CONTAINS(io::make_grid(zeros({0, 3, 4, 4})), "make_grid", "empty");
}

TEST_CASE("resize matches F.interpolate(mode='bilinear', align_corners=False)") {
  for (Dtype dt : {kFloat64, kFloat32}) {
    const double tol = dt == kFloat64 ? 1e-12 : 1e-5;
    INFO(dtype_name(dt));
    Tensor x = fixture(kFile, "resize.input").to(dt);  // (2, 3, 5, 4)
    CHECK_CLOSE(io::resize(x, 7, 9), fixture(kFile, "resize.up_7x9"), tol, tol);
    CHECK_CLOSE(io::resize(x, 3, 2), fixture(kFile, "resize.down_3x2"), tol, tol);
    CHECK_CLOSE(io::resize(x, 2, 11), fixture(kFile, "resize.mixed_2x11"), tol, tol);
    // (C, H, W) and (H, W) inputs, and a non-contiguous one
    CHECK_CLOSE(io::resize(x.select(0, 1), 7, 9), fixture(kFile, "resize.up_7x9").select(0, 1), tol, tol);
    CHECK_CLOSE(io::resize(x.select(0, 1).select(0, 2), 3, 2),
                fixture(kFile, "resize.down_3x2").select(0, 1).select(0, 2), tol, tol);
    Tensor xt = x.transpose(0, 1).contiguous().transpose(0, 1);  // same values, non-contiguous
    CHECK_CLOSE(io::resize(xt, 7, 9), fixture(kFile, "resize.up_7x9"), tol, tol);
    CHECK_CLOSE(io::resize(x, 5, 4), x, tol, tol);  // identity size
  }
  CHECK_ERROR_CONTAINS(io::resize(zeros({3, 4, 4}), 0, 2), "resize", "positive");
  CHECK_ERROR_CONTAINS(io::resize(zeros({4}), 2, 2), "resize", "(4,)");
}
