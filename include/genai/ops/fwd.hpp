// genai/ops/fwd.hpp: declarations of the primitive ops, so that op families can
// call one another (a backward formula of one family uses ops of another).
// Each op header includes this file, defines its own family, and includes the
// families it calls at its end.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "genai/core/tensor.hpp"

namespace genai {

/// Result of max/min along a dimension.
struct ValuesIndices {
  Tensor values;   // the reduced values
  Tensor indices;  // int64 positions along the reduced dimension
};

// ---- copy.hpp
inline Tensor to(const Tensor& x, Dtype d);
inline Tensor clone(const Tensor& x);
inline Tensor contiguous(const Tensor& x);

// ---- view.hpp
inline Tensor view(const Tensor& x, const Shape& shape);
inline Tensor reshape(const Tensor& x, const Shape& shape);
inline Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
inline Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
inline Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
inline Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
inline Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
inline Tensor select(const Tensor& x, int64_t dim, int64_t index);
inline Tensor expand(const Tensor& x, const Shape& shape);
inline Tensor squeeze(const Tensor& x);
inline Tensor squeeze(const Tensor& x, int64_t dim);
inline Tensor unsqueeze(const Tensor& x, int64_t dim);
inline TensorList split(const Tensor& x, int64_t split_size, int64_t dim = 0);
inline TensorList split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
inline TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

// ---- elementwise.hpp
inline Tensor add(const Tensor& a, const Tensor& b);
inline Tensor sub(const Tensor& a, const Tensor& b);
inline Tensor mul(const Tensor& a, const Tensor& b);
inline Tensor div(const Tensor& a, const Tensor& b);
inline Tensor add(const Tensor& a, double b);
inline Tensor mul(const Tensor& a, double b);
inline Tensor div(double a, const Tensor& b);
inline Tensor neg(const Tensor& x);
inline Tensor maximum(const Tensor& a, const Tensor& b);
inline Tensor minimum(const Tensor& a, const Tensor& b);
inline Tensor exp(const Tensor& x);
inline Tensor log(const Tensor& x);
inline Tensor log1p(const Tensor& x);
inline Tensor sqrt(const Tensor& x);
inline Tensor rsqrt(const Tensor& x);
inline Tensor square(const Tensor& x);
inline Tensor pow(const Tensor& x, double p);
inline Tensor pow(const Tensor& x, const Tensor& p);
inline Tensor abs(const Tensor& x);
inline Tensor sign(const Tensor& x);
inline Tensor clamp(const Tensor& x, double lo, double hi);
inline Tensor clamp_min(const Tensor& x, double lo);
inline Tensor clamp_max(const Tensor& x, double hi);
inline Tensor sin(const Tensor& x);
inline Tensor cos(const Tensor& x);
inline Tensor erf(const Tensor& x);
inline Tensor tanh(const Tensor& x);
inline Tensor sigmoid(const Tensor& x);
inline Tensor relu(const Tensor& x);
inline Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
inline Tensor elu(const Tensor& x, double alpha = 1.0);
inline Tensor gelu(const Tensor& x, std::string_view approximate = "none");
inline Tensor silu(const Tensor& x);
inline Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
inline Tensor eq(const Tensor& a, const Tensor& b);
inline Tensor ne(const Tensor& a, const Tensor& b);
inline Tensor lt(const Tensor& a, const Tensor& b);
inline Tensor le(const Tensor& a, const Tensor& b);
inline Tensor gt(const Tensor& a, const Tensor& b);
inline Tensor ge(const Tensor& a, const Tensor& b);
inline Tensor eq(const Tensor& a, double b);
inline Tensor ne(const Tensor& a, double b);
inline Tensor lt(const Tensor& a, double b);
inline Tensor le(const Tensor& a, double b);
inline Tensor gt(const Tensor& a, double b);
inline Tensor ge(const Tensor& a, double b);
inline Tensor logical_not(const Tensor& x);
inline Tensor logical_and(const Tensor& a, const Tensor& b);
inline Tensor logical_or(const Tensor& a, const Tensor& b);
inline Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
inline Tensor where(const Tensor& cond, const Tensor& a, double b);
inline Tensor where(const Tensor& cond, double a, const Tensor& b);
inline bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);

// ---- reduce.hpp
inline Tensor sum(const Tensor& x);
inline Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
inline Tensor mean(const Tensor& x);
inline Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
inline Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction = 1, bool keepdim = false);
inline Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
inline Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
inline Tensor max(const Tensor& x);
inline Tensor min(const Tensor& x);
inline ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
inline ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
inline Tensor argmax(const Tensor& x);
inline Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
inline Tensor argmin(const Tensor& x);
inline Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
inline Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
/// Sums x over its broadcast dimensions so that it has `shape` (the adjoint of expand).
inline Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- matmul.hpp
inline Tensor matmul(const Tensor& a, const Tensor& b);
inline Tensor mm(const Tensor& a, const Tensor& b);
inline Tensor bmm(const Tensor& a, const Tensor& b);
inline Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- softmax.hpp
inline Tensor softmax(const Tensor& x, int64_t dim);
inline Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- index.hpp
inline Tensor cat(const TensorList& xs, int64_t dim = 0);
inline Tensor stack(const TensorList& xs, int64_t dim = 0);
inline Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
inline Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
inline Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
inline Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
inline Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
inline Tensor one_hot(const Tensor& index, int64_t num_classes = -1);
inline Tensor triu(const Tensor& x, int64_t diagonal = 0);
inline Tensor tril(const Tensor& x, int64_t diagonal = 0);

// ---- pad.hpp
/// Pads the last dims of input: pad = {left, right} (last dim) or {left, right, top, bottom}
/// (last two dims), as torch.nn.functional.pad; mode "constant" (fills `value`), "reflect",
/// "replicate" or "circular".
inline Tensor pad(const Tensor& input, const std::vector<int64_t>& pad, std::string_view mode = "constant",
                  double value = 0.0);
/// pad(input, {left, right, top, bottom}, "reflect"), as torch.nn.ReflectionPad2d.
inline Tensor reflection_pad2d(const Tensor& input, int64_t left, int64_t right, int64_t top, int64_t bottom);

namespace detail {
/// zeros(shape) with g written into slice(dim, start, end, step): the adjoint of slice.
inline Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start, int64_t end, int64_t step);
}  // namespace detail

}  // namespace genai
