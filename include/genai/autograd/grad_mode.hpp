// genai/autograd/grad_mode.hpp: whether ops record the graph (as torch.no_grad /
// torch.enable_grad). Thread-local, like PyTorch's.
#pragma once

namespace genai {
namespace autograd {

namespace detail {
inline bool& grad_mode_ref() {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

/// True when ops on tensors that require grad record graph nodes.
inline bool is_grad_enabled() { return detail::grad_mode_ref(); }
inline void set_grad_enabled(bool on) { detail::grad_mode_ref() = on; }

/// RAII: sets grad mode for a scope and restores the previous mode.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : prev_(is_grad_enabled()) { set_grad_enabled(on); }
  ~GradModeGuard() { set_grad_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace autograd

/// RAII: no graph is recorded in this scope (as `with torch.no_grad():`).
class NoGradGuard : public autograd::GradModeGuard {
 public:
  NoGradGuard() : autograd::GradModeGuard(false) {}
};

/// RAII: the graph is recorded in this scope even inside a NoGradGuard.
class EnableGradGuard : public autograd::GradModeGuard {
 public:
  EnableGradGuard() : autograd::GradModeGuard(true) {}
};

}  // namespace genai
