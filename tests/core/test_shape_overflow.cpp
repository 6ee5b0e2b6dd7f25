// Tests of shape safety (core/shape.hpp, core/tensor.hpp make_tensor, core/storage.hpp,
// core/factory.hpp, ops/view.hpp infer_shape): negative sizes, element counts that
// overflow int64, byte sizes above the allocation limit, and reshapes whose product
// overflows throw genai::Error naming the shape, instead of wrapping around or
// reaching malloc with a huge (or wrapped, small) size.
#include <cstdint>
#include <limits>
#include <string>

#include "test_util.hpp"

using namespace genai;
using Catch::Matchers::Contains;

namespace {
template <class F>
std::string shape_error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}
constexpr int64_t kBig = int64_t(1) << 40;
}  // namespace

TEST_CASE("shape safety: element counts that overflow int64 throw naming the shape") {
  std::string msg = shape_error_of([] { zeros({kBig, kBig}); });
  CHECK_THAT(msg, Contains("invalid shape (1099511627776, 1099511627776): element count overflows int64"));
  CHECK_THAT(shape_error_of([] { empty({int64_t(1) << 62, 4}, kFloat64); }), Contains("element count overflows int64"));
  CHECK_THAT(shape_error_of([] { ones({3, std::numeric_limits<int64_t>::max(), 2}); }),
             Contains("element count overflows int64"));
  CHECK_THAT(shape_error_of([] { randn({kBig, kBig, kBig}); }), Contains("overflows int64"));
  CHECK_THAT(shape_error_of([] { full({kBig, kBig}, 1.0, kInt64); }), Contains("overflows int64"));
  // a zero-sized dimension makes the count 0: legal while the strides fit, as torch
  CHECK(empty({0, kBig}).numel() == 0);
  CHECK(zeros({kBig, 0, kBig / 2}).numel() == 0);
  // ... but not when the other sizes multiply past int64 (torch: "Stride calculation overflowed")
  CHECK_THAT(shape_error_of([] { empty({0, kBig, kBig}); }),
             Contains("invalid shape (0, 1099511627776, 1099511627776): its strides overflow int64"));
  CHECK_THAT(shape_error_of([] { zeros({2, 3}).reshape({0, -1}); }), Contains("reshape"));
}

TEST_CASE("shape safety: negative sizes throw naming the shape") {
  CHECK_THAT(shape_error_of([] { zeros({2, -3}); }), Contains("invalid shape (2, -3): sizes must be non-negative"));
  CHECK_THAT(shape_error_of([] { empty({-1}); }), Contains("invalid shape (-1,)"));
  CHECK_THAT(shape_error_of([] { rand({4, -1, 2}); }), Contains("sizes must be non-negative"));
  CHECK_THAT(shape_error_of([] { eye(-2); }), Contains("eye: n must be non-negative"));
  CHECK_THAT(shape_error_of([] { linspace(0, 1, -5); }), Contains("linspace: steps must be non-negative"));
  CHECK_THAT(shape_error_of([] { randperm(-1); }), Contains("randperm: n must be non-negative"));
}

TEST_CASE("shape safety: byte sizes above the allocation limit throw before malloc") {
  // 2^44 float32 elements = 64 TiB + : the count fits int64, the bytes exceed the limit
  std::string msg = shape_error_of([] { zeros({int64_t(1) << 22, int64_t(1) << 23}); });
  CHECK_THAT(msg, Contains("tensor of shape (4194304, 8388608) (float32, 35184372088832 elements) is too large to "
                           "allocate"));
  CHECK_THAT(shape_error_of([] { empty({int64_t(1) << 44}, kFloat64); }), Contains("is too large to allocate"));
  // int64 max elements of one byte: the count fits, the size is refused
  CHECK_THAT(shape_error_of([] { empty({std::numeric_limits<int64_t>::max()}, kBool); }),
             Contains("is too large to allocate"));
  // a Storage asked directly for a wrapped-around size
  CHECK_THAT(shape_error_of([] { Storage s(std::numeric_limits<size_t>::max() - 10); }),
             Contains("exceeds genai's limit"));
  CHECK_THAT(shape_error_of([] { linspace(0, 1, int64_t(1) << 60); }), Contains("too many to allocate"));
  CHECK_THAT(shape_error_of([] { arange(0.0, 1e30, 1e-3); }), Contains("overflows int64"));
  CHECK_THAT(shape_error_of([] { arange(0.0, std::numeric_limits<double>::infinity()); }), Contains("must be finite"));
}

TEST_CASE("shape safety: views and reshapes with overflowing products") {
  Tensor x = zeros({2, 3});
  CHECK_THAT(shape_error_of([&] { x.reshape({-1, kBig, kBig}); }),
             Contains("reshape: shape (-1, 1099511627776, 1099511627776) is invalid for input of shape (2, 3) "
                      "(6 elements): its element count overflows int64"));
  // 3 * 2^62 wraps to a negative int64 in unchecked arithmetic
  CHECK_THAT(shape_error_of([&] { x.view({-1, 3, int64_t(1) << 62}); }), Contains("overflows int64"));
  CHECK_THAT(shape_error_of([&] { x.view({kBig, kBig, kBig}); }), Contains("overflows int64"));
  CHECK_THAT(shape_error_of([&] { x.reshape({2, -2}); }), Contains("reshape: invalid size -2 in shape (2, -2)"));
  // expand to a huge stride-0 view: legal while the count fits, refused when it overflows
  Tensor one = zeros({1, 1});
  CHECK(one.expand({kBig, int64_t(1) << 20}).numel() == (int64_t(1) << 60));
  CHECK_THAT(shape_error_of([&] { one.expand({kBig, kBig}); }), Contains("overflows int64"));
}
