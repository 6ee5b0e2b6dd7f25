// genai/optim/lr_scheduler.hpp: learning-rate schedules (torch.optim.lr_scheduler
// of PyTorch 1.13): StepLR, ExponentialLR, CosineAnnealingLR, OneCycleLR, and
// WarmupCosineLR, the linear-warmup-then-cosine schedule of nanoGPT's train.py.
//
//   optim::AdamW opt(params, {.lr = 6e-4});
//   optim::WarmupCosineLR sched(opt, /*warmup_iters=*/2000, /*lr_decay_iters=*/600000, /*min_lr=*/6e-5);
//   for (...) { ...; opt.step(); sched.step(); }
//
// As torch: constructing a scheduler records each group's lr as its "initial_lr"
// (base_lrs) and performs an initial step (last_epoch becomes 0, the lr is set to
// the schedule's value at 0); each step() increments last_epoch and writes the new
// lr into every parameter group. StepLR, ExponentialLR and CosineAnnealingLR use
// torch's chainable (recursive) forms, which read the group's current lr, so
// another change of the lr composes as in torch; OneCycleLR and WarmupCosineLR are
// closed forms of last_epoch. OneCycleLR also cycles the momentum ("momentum", or
// Adam's "beta1") unless cycle_momentum is false.
//
// State dict (state_dict() / load_state_dict(), float64 tensors): "last_epoch",
// "_step_count" (0-d), "base_lrs", "_last_lr" (one value per group), and the
// scheduler's hyperparameters by torch's names ("step_size", "gamma", "T_max",
// "eta_min", ...), which loading restores as torch does. The lrs themselves live in
// the optimizer's param groups: save the optimizer's state dict too.
//
// Differences from PyTorch: no deprecated step(epoch) form; no verbose printing;
// OneCycleLR takes total_steps (not epochs and steps_per_epoch: pass their
// product) and one base/max momentum for every group.
#pragma once

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances the schedule by one step and sets every group's lr.
  void step() {
    step_count_ += 1;
    last_epoch_ += 1;
    std::vector<double> values = get_lr();
    auto& groups = opt_.param_groups();
    GENAI_CHECK(values.size() == groups.size(), name_, ": the optimizer has ", groups.size(),
                " parameter group(s) but the scheduler was made for ", values.size(),
                "; hint: create the scheduler after the last add_param_group");
    for (size_t i = 0; i < groups.size(); ++i) groups[i].set_lr(values[i]);
    last_lr_.clear();
    for (const auto& g : groups) last_lr_.push_back(g.lr());
  }

  /// The lr of each group as the last step() set it.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  const std::string& name() const { return name_; }

  io::TensorMap state_dict() const {
    io::TensorMap out;
    out["last_epoch"] = scalar_tensor(static_cast<double>(last_epoch_), kFloat64);
    out["_step_count"] = scalar_tensor(static_cast<double>(step_count_), kFloat64);
    out["base_lrs"] = tensor(base_lrs_, {static_cast<int64_t>(base_lrs_.size())}, kFloat64);
    out["_last_lr"] = tensor(last_lr_, {static_cast<int64_t>(last_lr_.size())}, kFloat64);
    for (const auto& h : const_cast<LRScheduler*>(this)->hparams())
      out[h.name] = scalar_tensor(h.real ? *h.real : static_cast<double>(*h.integer), kFloat64);
    return out;
  }

  void load_state_dict(const io::TensorMap& sd) {
    const std::string what = name_ + ".load_state_dict: ";
    auto get = [&](const std::string& k) -> const Tensor& {
      auto it = sd.find(k);
      GENAI_CHECK(it != sd.end() && it->second.defined(), what, "missing entry '", k, "'");
      return it->second;
    };
    auto scalar = [&](const std::string& k) {
      const Tensor& t = get(k);
      GENAI_CHECK(t.numel() == 1, what, "'", k, "' must hold one value, got shape ", shape_str(t.shape()));
      return t.item<double>();
    };
    const size_t n = opt_.param_groups().size();
    std::vector<double> base = get("base_lrs").to_vector<double>(), last = get("_last_lr").to_vector<double>();
    GENAI_CHECK(base.size() == n && last.size() == n, what, "the state dict is for ", base.size(),
                " parameter group(s) but the optimizer has ", n);
    auto hs = hparams();
    std::vector<double> hv;
    for (const auto& h : hs) hv.push_back(scalar(h.name));
    // everything read: commit
    last_epoch_ = static_cast<int64_t>(scalar("last_epoch"));
    step_count_ = static_cast<int64_t>(scalar("_step_count"));
    base_lrs_ = base;
    last_lr_ = last;
    for (size_t i = 0; i < hs.size(); ++i) {
      if (hs[i].real)
        *hs[i].real = hv[i];
      else
        *hs[i].integer = static_cast<int64_t>(hv[i]);
    }
    after_load();
  }

 protected:
  LRScheduler(Optimizer& optimizer, std::string name) : opt_(optimizer), name_(std::move(name)) {}

  /// Records base_lrs and performs the initial step; derived constructors call it
  /// last (it calls get_lr()). last_epoch = -1 starts a schedule; another value
  /// resumes one and needs "initial_lr" in every group (as torch).
  void init(int64_t last_epoch) {
    auto& groups = opt_.param_groups();
    base_lrs_.clear();
    for (size_t i = 0; i < groups.size(); ++i) {
      if (last_epoch == -1) {
        if (!groups[i].has("initial_lr")) groups[i].set("initial_lr", groups[i].lr());
      } else {
        GENAI_CHECK(groups[i].has("initial_lr"), name_, ": param 'initial_lr' is not specified in param_groups[", i,
                    "] when resuming an optimizer (last_epoch = ", last_epoch, ")");
      }
      base_lrs_.push_back(groups[i].get("initial_lr"));
    }
    last_epoch_ = last_epoch;
    step_count_ = 0;
    step();
  }

  /// The lr of each group at last_epoch (called by step() after it advanced last_epoch).
  virtual std::vector<double> get_lr() = 0;

  /// A hyperparameter saved in the state dict (exactly one of real / integer is set).
  struct HParam {
    const char* name;
    double* real;
    int64_t* integer;
  };
  virtual std::vector<HParam> hparams() { return {}; }
  virtual void after_load() {}

  std::vector<double> group_lrs() const {
    std::vector<double> v;
    for (const auto& g : opt_.param_groups()) v.push_back(g.lr());
    return v;
  }

  Optimizer& opt_;
  std::string name_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
  std::vector<double> last_lr_;
};

/// Multiplies the lr by gamma every step_size steps.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1, int64_t last_epoch = -1)
      : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
    GENAI_CHECK(step_size >= 1, "StepLR: step_size must be >= 1, got ", step_size);
    init(last_epoch);
  }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> lrs = group_lrs();
    if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lrs;
    for (double& lr : lrs) lr = lr * gamma_;
    return lrs;
  }
  std::vector<HParam> hparams() override { return {{"step_size", nullptr, &step_size_}, {"gamma", &gamma_, nullptr}}; }

 private:
  int64_t step_size_;
  double gamma_;
};

/// Multiplies the lr by gamma every step.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma, int64_t last_epoch = -1)
      : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
    init(last_epoch);
  }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> lrs = group_lrs();
    if (last_epoch_ == 0) return lrs;
    for (double& lr : lrs) lr = lr * gamma_;
    return lrs;
  }
  std::vector<HParam> hparams() override { return {{"gamma", &gamma_, nullptr}}; }

 private:
  double gamma_;
};

/// Cosine annealing from the base lr to eta_min over T_max steps (SGDR without
/// restarts), in torch's recursive form: past T_max the lr rises again.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0, int64_t last_epoch = -1)
      : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
    GENAI_CHECK(T_max >= 1, "CosineAnnealingLR: T_max must be >= 1, got ", T_max);
    init(last_epoch);
  }

 protected:
  std::vector<double> get_lr() override {
    constexpr double pi = std::numbers::pi;
    std::vector<double> lrs = group_lrs();
    const double T = static_cast<double>(T_max_), e = static_cast<double>(last_epoch_);
    if (last_epoch_ == 0) return lrs;
    if (step_count_ == 1 && last_epoch_ > 0) {
      for (size_t i = 0; i < lrs.size(); ++i)
        lrs[i] = eta_min_ + (base_lrs_[i] - eta_min_) * (1 + std::cos(e * pi / T)) / 2;
      return lrs;
    }
    if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
      for (size_t i = 0; i < lrs.size(); ++i) lrs[i] = lrs[i] + (base_lrs_[i] - eta_min_) * (1 - std::cos(pi / T)) / 2;
      return lrs;
    }
    for (double& lr : lrs)
      lr = (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) * (lr - eta_min_) + eta_min_;
    return lrs;
  }
  std::vector<HParam> hparams() override { return {{"T_max", nullptr, &T_max_}, {"eta_min", &eta_min_, nullptr}}; }

 private:
  int64_t T_max_;
  double eta_min_;
};

struct OneCycleLROptions {
  double pct_start = 0.3;
  std::string anneal_strategy = "cos";  // "cos" or "linear"
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.;
  double final_div_factor = 1e4;
  bool three_phase = false;
};

/// The 1cycle policy (Smith & Topin, 2017) as torch's OneCycleLR: the lr rises
/// from max_lr / div_factor to max_lr over pct_start of total_steps, then anneals
/// to initial_lr / final_div_factor (three_phase: back to initial_lr first);
/// momentum moves the opposite way between max_momentum and base_momentum.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, const OneCycleLROptions& o = {},
             int64_t last_epoch = -1)
      : OneCycleLR(optimizer, std::vector<double>(optimizer.param_groups().size(), max_lr), total_steps, o,
                   last_epoch) {}
  OneCycleLR(Optimizer& optimizer, const std::vector<double>& max_lrs, int64_t total_steps,
             const OneCycleLROptions& o = {}, int64_t last_epoch = -1)
      : LRScheduler(optimizer, "OneCycleLR"), total_steps_(total_steps), pct_start_(o.pct_start) {
    GENAI_CHECK(total_steps > 0, "OneCycleLR: expected positive integer total_steps, but got ", total_steps);
    GENAI_CHECK(o.pct_start >= 0 && o.pct_start <= 1, "OneCycleLR: expected float between 0 and 1 pct_start, but got ",
                o.pct_start);
    GENAI_CHECK(o.anneal_strategy == "cos" || o.anneal_strategy == "linear",
                "OneCycleLR: anneal_strategy must by one of 'cos' or 'linear', instead got '", o.anneal_strategy, "'");
    auto& groups = optimizer.param_groups();
    GENAI_CHECK(max_lrs.size() == groups.size(), "OneCycleLR: expected ", groups.size(), " values for max_lr, got ",
                max_lrs.size());
    three_phase_ = o.three_phase ? 1 : 0;
    anneal_linear_ = o.anneal_strategy == "linear" ? 1 : 0;
    cycle_momentum_ = o.cycle_momentum ? 1 : 0;
    build_phases();
    if (last_epoch == -1)
      for (size_t i = 0; i < groups.size(); ++i) {
        groups[i].set("initial_lr", max_lrs[i] / o.div_factor);
        groups[i].set("max_lr", max_lrs[i]);
        groups[i].set("min_lr", groups[i].get("initial_lr") / o.final_div_factor);
      }
    if (cycle_momentum_) {
      const Options& defs = optimizer.defaults();
      GENAI_CHECK(defs.count("momentum") || defs.count("beta1"), "OneCycleLR: optimizer ", optimizer.name(),
                  " must support momentum with `cycle_momentum` option enabled; hint: pass .cycle_momentum = false");
      use_beta1_ = defs.count("beta1") ? 1 : 0;
      if (last_epoch == -1)
        for (auto& g : groups) {
          g.set(use_beta1_ ? "beta1" : "momentum", o.max_momentum);
          g.set("max_momentum", o.max_momentum);
          g.set("base_momentum", o.base_momentum);
        }
    }
    init(last_epoch);
  }

 protected:
  std::vector<double> get_lr() override {
    const int64_t step_num = last_epoch_;
    GENAI_CHECK(step_num <= total_steps_, "OneCycleLR: tried to step ", step_num + 1,
                " times. The specified number of total steps is ", total_steps_);
    std::vector<double> lrs;
    for (auto& g : opt_.param_groups()) {
      double start_step = 0, computed_lr = 0, computed_momentum = 0;
      for (size_t i = 0; i < phases_.size(); ++i) {
        const Phase& ph = phases_[i];
        if (static_cast<double>(step_num) <= ph.end_step || i + 1 == phases_.size()) {
          const double pct = (static_cast<double>(step_num) - start_step) / (ph.end_step - start_step);
          computed_lr = anneal(g.get(ph.start_lr), g.get(ph.end_lr), pct);
          if (cycle_momentum_) computed_momentum = anneal(g.get(ph.start_momentum), g.get(ph.end_momentum), pct);
          break;
        }
        start_step = ph.end_step;
      }
      lrs.push_back(computed_lr);
      if (cycle_momentum_) g.set(use_beta1_ ? "beta1" : "momentum", computed_momentum);
    }
    return lrs;
  }
  std::vector<HParam> hparams() override {
    return {{"total_steps", nullptr, &total_steps_},       {"pct_start", &pct_start_, nullptr},
            {"three_phase", nullptr, &three_phase_},       {"anneal_linear", nullptr, &anneal_linear_},
            {"cycle_momentum", nullptr, &cycle_momentum_}, {"use_beta1", nullptr, &use_beta1_}};
  }
  void after_load() override { build_phases(); }

 private:
  struct Phase {
    double end_step;
    const char *start_lr, *end_lr, *start_momentum, *end_momentum;
  };

  void build_phases() {
    const double n = static_cast<double>(total_steps_);
    if (three_phase_)
      phases_ = {{pct_start_ * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
                 {2 * pct_start_ * n - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
                 {n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"}};
    else
      phases_ = {{pct_start_ * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
                 {n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"}};
  }
  double anneal(double start, double end, double pct) const {
    if (anneal_linear_) return (end - start) * pct + start;       // _annealing_linear
    const double cos_out = std::cos(std::numbers::pi * pct) + 1;  // _annealing_cos
    return end + (start - end) / 2.0 * cos_out;
  }

  int64_t total_steps_;
  double pct_start_;
  int64_t three_phase_ = 0, anneal_linear_ = 0, cycle_momentum_ = 1, use_beta1_ = 0;
  std::vector<Phase> phases_;
};

/// nanoGPT's schedule (train.py get_lr): linear warmup for warmup_iters steps,
/// then cosine decay from the base lr to min_lr at lr_decay_iters, then min_lr:
///   it <  warmup_iters:   lr = base_lr * (it + 1) / (warmup_iters + 1)
///   it >  lr_decay_iters: lr = min_lr
///   else: lr = min_lr + 0.5 (1 + cos(pi (it - warmup_iters) / (lr_decay_iters - warmup_iters))) (base_lr - min_lr)
/// with it = last_epoch (0 after construction). This is nanoGPT's current form;
/// its first version warmed up with base_lr * it / warmup_iters. min_lr is the same
/// for every group (nanoGPT sets one lr for all groups).
class WarmupCosineLR : public LRScheduler {
 public:
  WarmupCosineLR(Optimizer& optimizer, int64_t warmup_iters, int64_t lr_decay_iters, double min_lr,
                 int64_t last_epoch = -1)
      : LRScheduler(optimizer, "WarmupCosineLR"),
        warmup_iters_(warmup_iters),
        lr_decay_iters_(lr_decay_iters),
        min_lr_(min_lr) {
    GENAI_CHECK(warmup_iters >= 0 && lr_decay_iters > warmup_iters,
                "WarmupCosineLR: expected 0 <= warmup_iters < "
                "lr_decay_iters, got warmup_iters ",
                warmup_iters, " and lr_decay_iters ", lr_decay_iters);
    init(last_epoch);
  }

 protected:
  std::vector<double> get_lr() override {
    const int64_t it = last_epoch_;
    std::vector<double> lrs;
    for (double base : base_lrs_) {
      if (it < warmup_iters_) {
        lrs.push_back(base * static_cast<double>(it + 1) / static_cast<double>(warmup_iters_ + 1));
      } else if (it > lr_decay_iters_) {
        lrs.push_back(min_lr_);
      } else {
        const double decay_ratio =
            static_cast<double>(it - warmup_iters_) / static_cast<double>(lr_decay_iters_ - warmup_iters_);
        const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * decay_ratio));
        lrs.push_back(min_lr_ + coeff * (base - min_lr_));
      }
    }
    return lrs;
  }
  std::vector<HParam> hparams() override {
    return {{"warmup_iters", nullptr, &warmup_iters_},
            {"lr_decay_iters", nullptr, &lr_decay_iters_},
            {"min_lr", &min_lr_, nullptr}};
  }

 private:
  int64_t warmup_iters_, lr_decay_iters_;
  double min_lr_;
};

}  // namespace optim
}  // namespace genai
