#include "optim.h"

#include <cmath>
#include <stdexcept>

namespace spurmem {

Optimizer::Optimizer(std::vector<torch::Tensor> params, OptimizerOptions o)
    : opts(std::move(o)), params_(std::move(params)) {
  if (opts.type != "adam" && opts.type != "sgd") throw std::invalid_argument("optimizer must be adam or sgd");
  step_.assign(params_.size(), 0);
  expAvg_.resize(params_.size());
  expAvgSq_.resize(params_.size());
  momentum_.resize(params_.size());
}

void Optimizer::zeroGrad() {
  for (auto& p : params_)
    if (p.mutable_grad().defined()) p.mutable_grad().reset();
}

void Optimizer::step() {
  torch::NoGradGuard g;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (!p.grad().defined()) continue;
    torch::Tensor grad = p.grad();
    if (opts.weightDecay != 0) grad = grad.add(p, opts.weightDecay);
    if (opts.type == "adam") {
      if (!expAvg_[i].defined()) {
        expAvg_[i] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
        expAvgSq_[i] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      int64_t step = ++step_[i];
      // torch 1.13 writes mul_ + add_; torch 2.x lerp_: the same value up to rounding
      expAvg_[i].mul_(opts.beta1).add_(grad, 1 - opts.beta1);
      expAvgSq_[i].mul_(opts.beta2).addcmul_(grad, grad, 1 - opts.beta2);
      double bc1 = 1 - std::pow(opts.beta1, static_cast<double>(step));
      double bc2 = 1 - std::pow(opts.beta2, static_cast<double>(step));
      double stepSize = opts.lr / bc1;
      auto denom = (expAvgSq_[i].sqrt() / std::sqrt(bc2)).add_(opts.eps);
      p.addcdiv_(expAvg_[i], denom, -stepSize);
    } else {
      torch::Tensor d = grad;
      if (opts.momentum != 0) {
        if (!momentum_[i].defined()) momentum_[i] = d.clone().detach();
        else momentum_[i].mul_(opts.momentum).add_(d, 1 - opts.dampening);
        d = opts.nesterov ? d.add(momentum_[i], opts.momentum) : momentum_[i];
      }
      ++step_[i];
      p.add_(d, -opts.lr);
    }
  }
}

ValuePtr Optimizer::stateDict() const {
  auto state = Value::dict();
  for (size_t i = 0; i < params_.size(); ++i) {
    auto s = Value::dict();
    if (opts.type == "adam") {
      if (!expAvg_[i].defined()) continue;
      s->set("step", Value::fromTensor(torch::tensor(static_cast<float>(step_[i]))));
      s->set("exp_avg", Value::fromTensor(expAvg_[i]));
      s->set("exp_avg_sq", Value::fromTensor(expAvgSq_[i]));
    } else {
      if (step_[i] == 0) continue;
      s->set("momentum_buffer", momentum_[i].defined() ? Value::fromTensor(momentum_[i]) : Value::none());
    }
    state->entries.emplace_back(Value::integer(static_cast<int64_t>(i)), s);
  }
  auto group = Value::dict();
  group->set("lr", Value::real(opts.lr));
  if (opts.type == "adam") {
    group->set("betas", Value::tuple({Value::real(opts.beta1), Value::real(opts.beta2)}));
    group->set("eps", Value::real(opts.eps));
    group->set("weight_decay", Value::real(opts.weightDecay));
    group->set("amsgrad", Value::boolean(false));
    group->set("maximize", Value::boolean(false));
    group->set("foreach", Value::none());
    group->set("capturable", Value::boolean(false));
    group->set("differentiable", Value::boolean(false));
    group->set("fused", Value::none());
  } else {
    group->set("momentum", Value::real(opts.momentum));
    group->set("dampening", Value::real(opts.dampening));
    group->set("weight_decay", Value::real(opts.weightDecay));
    group->set("nesterov", Value::boolean(opts.nesterov));
    group->set("maximize", Value::boolean(false));
    group->set("foreach", Value::none());
    group->set("differentiable", Value::boolean(false));
  }
  auto ids = Value::list();
  for (size_t i = 0; i < params_.size(); ++i) ids->items.push_back(Value::integer(static_cast<int64_t>(i)));
  group->set("params", ids);
  auto groups = Value::list();
  groups->items.push_back(group);
  auto sd = Value::dict();
  sd->set("state", state);
  sd->set("param_groups", groups);
  return sd;
}

void Optimizer::loadStateDict(const ValuePtr& sd) {
  if (!sd || sd->kind != Kind::Dict) throw std::invalid_argument("optimizer_state_dict is not a dict");
  auto state = sd->get("state");
  auto groups = sd->get("param_groups");
  if (!state || state->kind != Kind::Dict) throw std::invalid_argument("optimizer_state_dict has no 'state' dict");
  if (groups && groups->kind == Kind::List && !groups->items.empty()) {
    auto g = groups->items[0];
    if (auto lr = g->get("lr"); lr && lr->kind == Kind::Float) opts.lr = lr->f;
    if (auto ps = g->get("params"); ps && ps->kind == Kind::List && ps->items.size() != params_.size())
      throw std::invalid_argument("optimizer_state_dict is for " + std::to_string(ps->items.size()) +
                                  " parameters, the model has " + std::to_string(params_.size()));
  }
  torch::NoGradGuard g;
  for (const auto& e : state->entries) {
    if (e.first->kind != Kind::Int || e.first->i < 0 || static_cast<size_t>(e.first->i) >= params_.size())
      throw std::invalid_argument("optimizer state key " + keyText(*e.first) + " is not a parameter index");
    size_t i = static_cast<size_t>(e.first->i);
    const auto& s = e.second;
    auto tensorOf = [&](const char* k) {
      auto v = s->get(k);
      if (!v || v->kind != Kind::Tensor) throw std::invalid_argument(std::string("optimizer state ") + std::to_string(i) + " has no tensor '" + k + "'");
      if (v->tensor.sizes() != params_[i].sizes())
        throw std::invalid_argument(std::string("optimizer state ") + std::to_string(i) + "." + k + " has the wrong shape");
      return v->tensor.to(params_[i].options()).clone();
    };
    auto stepV = s->get("step");
    int64_t step = 0;
    if (stepV && stepV->kind == Kind::Tensor) step = static_cast<int64_t>(stepV->tensor.item<double>());
    else if (stepV && stepV->kind == Kind::Int) step = stepV->i;
    else if (stepV && stepV->kind == Kind::Float) step = static_cast<int64_t>(stepV->f);
    if (opts.type == "adam") {
      expAvg_[i] = tensorOf("exp_avg");
      expAvgSq_[i] = tensorOf("exp_avg_sq");
      step_[i] = step;
    } else {
      auto mb = s->get("momentum_buffer");
      if (mb && mb->kind == Kind::Tensor) momentum_[i] = tensorOf("momentum_buffer");
      step_[i] = std::max<int64_t>(step, 1);
    }
  }
}

}  // namespace spurmem
