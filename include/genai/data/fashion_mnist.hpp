// genai/data/fashion_mnist.hpp: the Fashion-MNIST dataset (Xiao, Rasul & Vollgraf
// 2017, https://github.com/zalandoresearch/fashion-mnist), as
// torchvision.datasets.FashionMNIST with transforms.ToTensor().
//
// 60,000 training and 10,000 test greyscale 28x28 images of 10 clothing classes.
// get(i) returns input float32 (1, 28, 28) in [0, 1] (byte / 255) and target an
// int64 scalar class in [0, 10); a DataLoader batch is (B, 1, 28, 28) and (B,).
// The files are read from `root` (by default where Debian's package
// dataset-fashion-mnist installs them: /usr/share/datasets/fashion-mnist/),
// named {train,t10k}-{images-idx3,labels-idx1}-ubyte, gzip-compressed (".gz") or
// not. Images stay uint8 in memory (47 MB for the training set) and are converted
// per example. Differences from torchvision: no download, no transforms; an
// optional `limit` keeps the first n examples (and reads only those).
#pragma once

#include <cstdint>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "genai/core/factory.hpp"
#include "genai/data/dataset.hpp"
#include "genai/io/idx.hpp"

namespace genai {
namespace data {

class FashionMNIST : public Dataset {
 public:
  /// Where Debian's dataset-fashion-mnist package puts the files.
  static constexpr const char* kDefaultRoot = "/usr/share/datasets/fashion-mnist";
  static constexpr int64_t kSide = 28;

  /// Loads the training (`train`) or test split from `root`; `limit` >= 0 keeps
  /// only the first `limit` examples. Throws naming the missing file and the
  /// Debian package when the data is absent.
  explicit FashionMNIST(const std::string& root = kDefaultRoot, bool train = true, int64_t limit = -1) {
    const std::string prefix = train ? "train" : "t10k";
    const std::string img_path = find_file(root, prefix + "-images-idx3-ubyte");
    const std::string lbl_path = find_file(root, prefix + "-labels-idx1-ubyte");
    io::IdxArray img = io::read_idx(img_path, limit);
    io::IdxArray lbl = io::read_idx(lbl_path, limit);
    GENAI_CHECK(img.type == 0x08 && img.shape.size() == 3 && img.shape[1] == kSide && img.shape[2] == kSide,
                "FashionMNIST: '", img_path, "' should hold uint8 images (N, 28, 28), holds type ",
                static_cast<int>(img.type), " of shape ", shape_str(img.shape));
    GENAI_CHECK(lbl.type == 0x08 && lbl.shape.size() == 1, "FashionMNIST: '", lbl_path,
                "' should hold uint8 labels (N,), holds type ", static_cast<int>(lbl.type), " of shape ",
                shape_str(lbl.shape));
    GENAI_CHECK(img.shape[0] == lbl.shape[0], "FashionMNIST: '", img_path, "' has ", img.shape[0], " images but '",
                lbl_path, "' has ", lbl.shape[0], " labels");
    for (size_t i = 0; i < lbl.data.size(); ++i)
      GENAI_CHECK(lbl.data[i] < 10, "FashionMNIST: '", lbl_path, "': label ", static_cast<int>(lbl.data[i]),
                  " of example ", i, " is not a class in [0, 10)");
    images_ = std::move(img.data);
    labels_ = std::move(lbl.data);
    n_ = img.shape[0];
  }

  /// True when the four files are in `root` (tests skip without them).
  static bool available(const std::string& root = kDefaultRoot) {
    for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                             "t10k-labels-idx1-ubyte"})
      if (!exists(root + "/" + name + ".gz") && !exists(root + "/" + name)) return false;
    return true;
  }

  /// The class names, indexed by label.
  static const std::vector<std::string>& classes() {
    static const std::vector<std::string> c{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return c;
  }

  int64_t size() const override { return n_; }

  /// input float32 (1, 28, 28) in [0, 1]; target int64 () in [0, 10).
  Example get(int64_t index) const override {
    GENAI_CHECK(index >= 0 && index < n_, "FashionMNIST: index ", index, " out of range for ", n_, " examples");
    Tensor x = empty({1, kSide, kSide}, kFloat32);
    float* p = x.data_ptr<float>();
    const unsigned char* src = images_.data() + index * kSide * kSide;
    for (int64_t i = 0; i < kSide * kSide; ++i) p[i] = static_cast<float>(src[i]) / 255.0f;
    return {x, scalar_tensor(static_cast<double>(labels_[static_cast<size_t>(index)]), kInt64)};
  }

  /// The label of example `index`, without building the image.
  int64_t label(int64_t index) const {
    GENAI_CHECK(index >= 0 && index < n_, "FashionMNIST: index ", index, " out of range for ", n_, " examples");
    return labels_[static_cast<size_t>(index)];
  }

  /// The raw images, uint8 row-major (N, 28, 28).
  const std::vector<unsigned char>& raw_images() const { return images_; }

 private:
  static bool exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  }
  static std::string find_file(const std::string& root, const std::string& name) {
    const std::string gz = root + "/" + name + ".gz", plain = root + "/" + name;
    if (exists(gz)) return gz;
    if (exists(plain)) return plain;
    GENAI_FAIL("FashionMNIST: '", gz, "' not found (nor '", plain,
               "'); hint: install the Debian package dataset-fashion-mnist "
               "(apt-get install dataset-fashion-mnist), or pass the directory that holds "
               "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] as root");
  }

  std::vector<unsigned char> images_;  // (N, 28, 28) uint8
  std::vector<unsigned char> labels_;  // (N,) uint8
  int64_t n_ = 0;
};

}  // namespace data
}  // namespace genai
