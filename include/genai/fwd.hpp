// genai/fwd.hpp: forward declarations of the main types.
#pragma once

#include <cstdint>
#include <vector>

namespace genai {
class Tensor;
struct TensorImpl;
class Storage;
class Generator;
enum class Dtype : uint8_t;
using Shape = std::vector<int64_t>;
using TensorList = std::vector<Tensor>;
namespace autograd {
class Node;
struct Edge;
}  // namespace autograd
}  // namespace genai
