// Tests of the Fashion-MNIST dataset, read from Debian's dataset-fashion-mnist
// package (/usr/share/datasets/fashion-mnist). Skipped, with a message, when the
// package is not installed.
//
// Reference values were read from the same files with Python's gzip module:
//   import gzip, struct
//   im = gzip.open("train-images-idx3-ubyte.gz").read(); lb = gzip.open("train-labels-idx1-ubyte.gz").read()
//   struct.unpack(">IIII", im[:16])  -> (2051, 60000, 28, 28)
//   list(lb[8:18])                   -> [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
//   img0 = im[16:16 + 784]; sum(img0), max(img0), list(img0[14 * 28:15 * 28])
//                                    -> 76247, 255, [0, 0, 1, 4, 6, 7, 2, 0, ...]
//   (and the same for t10k: 10000 images, labels [9, 2, 1, 1, 6, 1, 4, 6, 5, 7], img0 sum 33456,
//    1000 examples of each class)
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <cmath>

#include <genai/data/dataloader.hpp>
#include <genai/data/fashion_mnist.hpp>

using namespace genai;
using namespace genai::data;

namespace {
bool skip_without_data() {
  if (FashionMNIST::available()) return false;
  WARN("SKIPPED: Fashion-MNIST not found in " << FashionMNIST::kDefaultRoot
                                              << "; install the Debian package dataset-fashion-mnist");
  return true;
}
}  // namespace

TEST_CASE("FashionMNIST training split: shapes, value range, first labels and pixels") {
  if (skip_without_data()) return;
  FashionMNIST train(FashionMNIST::kDefaultRoot, true, 10);
  REQUIRE(train.size() == 10);
  const std::vector<int64_t> first_labels{9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  for (int64_t i = 0; i < 10; ++i) {
    Example e = train.get(i);
    CHECK(e.input.dtype() == kFloat32);
    CHECK(e.input.shape() == Shape{1, 28, 28});
    CHECK(e.target.dtype() == kInt64);
    CHECK(e.target.dim() == 0);
    CHECK(e.target.item<int64_t>() == first_labels[static_cast<size_t>(i)]);
    CHECK(train.label(i) == first_labels[static_cast<size_t>(i)]);
    CHECK(e.input.min().item<float>() >= 0.f);
    CHECK(e.input.max().item<float>() <= 1.f);
  }
  Example e0 = train.get(0);
  std::vector<float> px = e0.input.to_vector();
  double sum = 0;
  for (float v : px) sum += v * 255.0;
  CHECK(std::abs(sum - 76247) < 1e-2);
  CHECK(e0.input.max().item<float>() == 1.f);
  const std::vector<int> row14{0,   0,   1,   4,   6,   7,   2,   0,   0,   0,   0,   0,   237, 226,
                               217, 223, 222, 219, 222, 221, 216, 223, 229, 215, 218, 255, 77,  0};
  for (int x = 0; x < 28; ++x) CHECK(px[static_cast<size_t>(14 * 28 + x)] == static_cast<float>(row14[static_cast<size_t>(x)]) / 255.f);
  CHECK(FashionMNIST::classes()[9] == "Ankle boot");
  CHECK_ERROR_CONTAINS(train.get(10), "FashionMNIST", "index 10 out of range for 10");
}

TEST_CASE("FashionMNIST test split: all 10000 examples, balanced classes") {
  if (skip_without_data()) return;
  FashionMNIST test(FashionMNIST::kDefaultRoot, false);
  REQUIRE(test.size() == 10000);
  std::vector<int64_t> counts(10, 0);
  for (int64_t i = 0; i < test.size(); ++i) ++counts[static_cast<size_t>(test.label(i))];
  CHECK(counts == std::vector<int64_t>(10, 1000));
  const std::vector<int64_t> first_labels{9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (int64_t i = 0; i < 10; ++i) CHECK(test.label(i) == first_labels[static_cast<size_t>(i)]);
  double sum = 0;
  for (float v : test.get(0).input.to_vector()) sum += v * 255.0;
  CHECK(std::abs(sum - 33456) < 1e-2);

  DataLoader loader(test, {.batch_size = 64, .shuffle = true, .seed = 1});
  Example b = *loader.begin();
  CHECK(b.input.shape() == Shape{64, 1, 28, 28});
  CHECK(b.target.shape() == Shape{64});
  CHECK(loader.size() == 157);
}

TEST_CASE("FashionMNIST names the missing file and the Debian package") {
  genai_test::TempDir dir;
  CHECK_FALSE(FashionMNIST::available(dir.path()));
  CHECK_ERROR_CONTAINS(FashionMNIST(dir.path(), true), dir.path() + "/train-images-idx3-ubyte.gz",
                       "dataset-fashion-mnist");
  CHECK_ERROR_CONTAINS(FashionMNIST(dir.path(), false), dir.path() + "/t10k-images-idx3-ubyte.gz");
}
