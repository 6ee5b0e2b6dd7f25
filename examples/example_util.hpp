// Small helpers shared by the example programs (not part of the library).
#pragma once

#include <cstdio>
#include <string>

namespace examples {

/// The exit status ctest reads as "skipped" (SKIP_RETURN_CODE in examples/CMakeLists.txt).
inline constexpr int kSkipped = 77;

/// Says that Fashion-MNIST is missing from `dir` and how to get it; returns kSkipped.
/// `note` (optional) is appended to the first line, e.g. why this program needs the data.
inline int missing_fashion_mnist(const char* program, const std::string& dir, const char* note = "") {
  std::fprintf(stderr,
               "%s: Fashion-MNIST not found in %s%s.\n"
               "Install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist),\n"
               "or pass --data DIR with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].\n",
               program, dir.c_str(), note);
  return kSkipped;
}

}  // namespace examples
