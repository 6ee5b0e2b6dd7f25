// Small helpers shared by the example programs (not part of the library).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include <genai/config.hpp>

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

/// Thrown by check_finite_loss (a genai::Error, so the examples' main() prints it and exits
/// with status 1).
struct NonFiniteLoss : genai::Error {
  explicit NonFiniteLoss(const std::string& msg) : genai::Error(msg, __FILE__, __LINE__) {}
};

/// Stops training when a loss is NaN or infinite. The weights in memory may already have
/// taken a step with non-finite gradients, so nothing more is written: the checkpoint on
/// disk, the last one written before this step, stays the last good one.
inline void check_finite_loss(double loss, int64_t step, const char* what = "training loss") {
  if (std::isfinite(loss)) return;
  throw NonFiniteLoss(std::string("the ") + what + " is " + (std::isnan(loss) ? "NaN" : "infinite") + " at step " +
                      std::to_string(step) +
                      ": training stopped. The last checkpoint written before this step is kept (continue from "
                      "it with --resume, perhaps with a lower learning rate or gradient clipping); "
                      "GENAI_DETECT_ANOMALY=1 names the operation that first produced a NaN or infinity.");
}

}  // namespace examples
