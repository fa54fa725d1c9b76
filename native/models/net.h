// Base class of spurmem's models: a torch::nn::Module whose parameter and buffer names are exactly
// torchvision's (ResNet) or timm's (ViT), so that state dicts move between spurmem and PyTorch unchanged.
#pragma once

#include "models/layers.h"

#include <map>
#include <string>
#include <vector>

namespace spurmem {

/// Options common to every architecture.
struct NetOptions {
  std::string arch;          // resnet18 | resnet50 | deit_tiny | deit_small | deit_base | vit_large
  int64_t numClasses = 2;
  bool softmaxHead = true;   // head = Sequential(Linear, Softmax) with keys <head>.0.*, as the original code
  double lnEps = 1e-6;       // ViT LayerNorm epsilon
  int64_t imageSize = 224;   // ViT position-embedding grid
  int64_t depth = 0;         // ViT: number of blocks; 0 = the architecture's own (12, or 24 for vit_large)
};

struct Net : torch::nn::Module {
  explicit Net(NetOptions o) : opts(std::move(o)) {}
  /// x: [B, 3, H, W] float, normalised. Returns [B, numClasses]: probabilities with the softmax head,
  /// logits otherwise.
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  /// Name of the head module ("fc" for ResNets, "head" for ViTs).
  virtual std::string headName() const = 0;

  NetOptions opts;
  /// When true, forward() returns the head's Linear output even with the softmax head (the logits the
  /// Softmax would receive). Set only while the model's lock is held (see LogitsScope).
  bool headLogits = false;
  /// Parameters whose modules accept a weight mask (conv weights; ViT qkv/proj/fc1/fc2 weights).
  std::map<std::string, torch::Tensor*> maskSlots;

  /// State-dict entries in PyTorch's order: each module's parameters, then its buffers, then its children.
  std::vector<std::pair<std::string, torch::Tensor>> stateDict();
  /// Named parameters in registration order (PyTorch's named_parameters()).
  std::vector<std::pair<std::string, torch::Tensor>> namedParameters();

 protected:
  /// Applies the 2-way head: Linear then (optionally) softmax over classes.
  torch::Tensor head(const torch::Tensor& features);
  Linear headLinear{nullptr};
  /// Registers the head under `name` ("fc" or "head"): as a container holding "0" or as the Linear itself.
  void registerHead(const std::string& name, int64_t features);
  void collectMaskSlots();
};

std::shared_ptr<Net> makeNet(const NetOptions& o);

/// Makes a net return its head's logits for the lifetime of the scope (exception-safe).
struct LogitsScope {
  LogitsScope(Net& n, bool on) : net(n), before(n.headLogits) { net.headLogits = on; }
  ~LogitsScope() { net.headLogits = before; }
  Net& net;
  bool before;
};

}  // namespace spurmem
