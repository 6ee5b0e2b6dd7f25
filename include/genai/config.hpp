// genai/config.hpp: version, the error type and the checking macros.
//
// GENAI_CHECK is always on: it throws genai::Error with the failing file:line and a
// message built from its arguments (shapes, values, a hint). GENAI_ASSERT guards
// internal invariants; it is also always on, because a wrong invariant in a
// numerical library gives silent garbage, which is worse than an exception.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#define GENAI_VERSION_MAJOR 0
#define GENAI_VERSION_MINOR 1
#define GENAI_VERSION_PATCH 0
#define GENAI_VERSION_STRING "0.1.0"

namespace genai {

/// The one exception type the library throws for bad input and failed checks.
/// `what()` holds the message and, on its last line, the source location.
class Error : public std::runtime_error {
 public:
  Error(const std::string& msg, const char* file, int line)
      : std::runtime_error(msg + "\n  [at " + file + ":" + std::to_string(line) + "]"),
        message_(msg) {}
  /// The message without the source location.
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

namespace detail {

template <class... Args>
inline std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

[[noreturn]] inline void throw_error(const char* file, int line, const std::string& msg) {
  throw Error(msg, file, line);
}

}  // namespace detail
}  // namespace genai

/// Throws genai::Error with the concatenated message when `cond` is false.
#define GENAI_CHECK(cond, ...)                                                             \
  do {                                                                                     \
    if (!(cond)) [[unlikely]]                                                              \
      ::genai::detail::throw_error(__FILE__, __LINE__, ::genai::detail::str_cat(__VA_ARGS__)); \
  } while (0)

/// Internal invariant: a failure here is a bug in genai, not in the caller's code.
#define GENAI_ASSERT(cond)                                                                  \
  do {                                                                                      \
    if (!(cond)) [[unlikely]]                                                               \
      ::genai::detail::throw_error(__FILE__, __LINE__,                                      \
                                   "internal error: assertion `" #cond "` failed; "         \
                                   "please report this as a bug in genai");                 \
  } while (0)

/// Unconditional error.
#define GENAI_FAIL(...) ::genai::detail::throw_error(__FILE__, __LINE__, ::genai::detail::str_cat(__VA_ARGS__))
