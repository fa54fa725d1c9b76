// Base class of spurmem's models: a torch::nn::Module whose parameter and buffer names are exactly
// torchvision's (ResNet) or timm's (ViT), so that state dicts move between spurmem and PyTorch unchanged.
#pragma once

#include "models/layers.h"

#include <map>
#include <string>
#include <vector>

namespace spurmem {

/// A network's shape as plain values: TypeScript's architecture table (src/model/architectures.ts)
/// resolves an architecture name into these; native code keeps no table of names.
struct NetOptions {
  std::string arch;          // the architecture's name, a label for messages only
  std::string family;        // resnet | vit
  int64_t numClasses = 0;
  bool softmaxHead = false;  // head = Sequential(Linear, Softmax) with keys <head>.0.*, as the original code
  // ResNet
  std::string block;             // basic | bottleneck
  std::vector<int64_t> layers;   // blocks in layer1..layer4
  // ViT
  int64_t width = 0;         // embedding dimension
  int64_t depth = 0;         // number of blocks
  int64_t heads = 0;         // attention heads
  int64_t patchSize = 0;     // patch side in pixels
  double lnEps = 0;          // LayerNorm epsilon
  int64_t imageSize = 0;     // position-embedding grid (imageSize / patchSize)^2
};

struct Net : torch::nn::Module {
  explicit Net(NetOptions o) : opts(std::move(o)) {}
  /// x: [B, 3, H, W] float, normalised. Returns [B, numClasses]: probabilities with the softmax head,
  /// logits otherwise.
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  /// Name of the head module ("fc" for ResNets, "head" for ViTs).
  virtual std::string headName() const = 0;
  /// Adapts a checkpoint tensor `src` for the model's entry `key` of shape `dst` when the model knows how
  /// (as timm's checkpoint_filter_fn beside its model); returns true and a note for the load report when it
  /// did. The default adapts nothing.
  virtual bool adaptEntry(const std::string& key, torch::Tensor& src, const torch::Tensor& dst, std::string& note) {
    return false;
  }

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

/// The net of o.family; throws std::invalid_argument for an unknown family or bad sizes.
std::shared_ptr<Net> makeNet(const NetOptions& o);

/// Makes a net return its head's logits for the lifetime of the scope (exception-safe).
struct LogitsScope {
  LogitsScope(Net& n, bool on) : net(n), before(n.headLogits) { net.headLogits = on; }
  ~LogitsScope() { net.headLogits = before; }
  Net& net;
  bool before;
};

}  // namespace spurmem
