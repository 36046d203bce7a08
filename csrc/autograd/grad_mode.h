#pragma once
// Thread-local switch for graph recording (no_grad / enable_grad / set_grad_enabled).
namespace dc::autograd {

bool grad_enabled();
void set_grad_enabled(bool enabled);

struct GradModeGuard {
  explicit GradModeGuard(bool enabled) : prev_(grad_enabled()) { set_grad_enabled(enabled); }
  ~GradModeGuard() { set_grad_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace dc::autograd
