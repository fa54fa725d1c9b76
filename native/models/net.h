// Base class of spurmem's models: a torch::nn::Module whose parameter and buffer names are exactly
// torchvision's (ResNet) or timm's (ViT), so that state dicts move between spurmem and PyTorch unchanged.
#pragma once

#include "models/layers.h"

#include <functional>
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
  /// logits otherwise. The same as forwardStages(x, 0, numStages()).
  torch::Tensor forward(const torch::Tensor& x) { return forwardStages(x, 0, numStages()); }
  /// Called with (stage, input of that stage) before each stage forwardStages runs.
  using StageInput = std::function<void(int64_t, const torch::Tensor&)>;
  /// Runs stages [from, to) of the network on x, the input of stage `from` (the normalised image batch
  /// for stage 0), and returns the output of stage to - 1: the network's output when `to` is numStages().
  /// Stage 0 is the stem (ResNet: conv1, bn1, ReLU, max-pool) or the patch embedding (ViT: patch_embed,
  /// cls_token, pos_embed); stages 1..n are the residual blocks in order (ResNet: layer1.0 ... layer4.last;
  /// ViT: blocks.0 ... blocks.n-1); stage n + 1 is the head (ResNet: average pool + fc; ViT: norm + head).
  /// No stage writes into its input, so an input kept by `onInput` stays valid for a later call from that
  /// stage. Throws std::invalid_argument unless 0 <= from < to <= numStages(). Each model says what one
  /// stage does (runStage); the loop over them is here.
  torch::Tensor forwardStages(const torch::Tensor& x, int64_t from, int64_t to, const StageInput& onInput = nullptr);
  /// Number of stages: the blocks + 2.
  virtual int64_t numStages() const = 0;
  /// The stage that owns a parameter or buffer (see forwardStages), or -1 for a name the net does not have.
  virtual int64_t stageOf(const std::string& name) const = 0;
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
  /// Runs stage `stage` (see forwardStages) on its input x and returns its output.
  virtual torch::Tensor runStage(int64_t stage, const torch::Tensor& x) = 0;
  /// Applies the 2-way head: Linear then (optionally) softmax over classes.
  torch::Tensor head(const torch::Tensor& features);
  Linear headLinear{nullptr};
  /// Registers the head under `name` ("fc" or "head"): as a container holding "0" or as the Linear itself.
  void registerHead(const std::string& name, int64_t features);
  void collectMaskSlots();
};

/// The net of o.family; throws std::invalid_argument for an unknown family or bad sizes.
std::shared_ptr<Net> makeNet(const NetOptions& o);

/// Throws std::invalid_argument unless 0 <= from < to <= stages.
void checkStageRange(const std::string& arch, int64_t from, int64_t to, int64_t stages);

/// Makes a net return its head's logits for the lifetime of the scope (exception-safe).
struct LogitsScope {
  LogitsScope(Net& n, bool on) : net(n), before(n.headLogits) { net.headLogits = on; }
  ~LogitsScope() { net.headLogits = before; }
  Net& net;
  bool before;
};

}  // namespace spurmem
