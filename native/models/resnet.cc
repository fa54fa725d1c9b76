#include "models/resnet.h"

namespace spurmem {

/// BasicBlock (ResNet-18/34): conv3x3-bn-relu-conv3x3-bn + identity or downsample (conv1x1-bn).
struct BasicBlockImpl : torch::nn::Module {
  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  Conv2d conv1{nullptr}, conv2{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr};
  Container downsample{nullptr};
  Conv2d dsConv{nullptr};
  BatchNorm2d dsBn{nullptr};
};
TORCH_MODULE(BasicBlock);

/// Bottleneck (ResNet-50/101), torchvision v1.5: the stride sits on the 3x3 conv.
struct BottleneckImpl : torch::nn::Module {
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  Container downsample{nullptr};
  Conv2d dsConv{nullptr};
  BatchNorm2d dsBn{nullptr};
};
TORCH_MODULE(Bottleneck);

namespace {
void makeDownsample(torch::nn::Module& block, int64_t inplanes, int64_t out, int64_t stride, Container& ds,
                    Conv2d& conv, BatchNorm2d& bn) {
  if (stride == 1 && inplanes == out) return;
  ds = Container();
  conv = Conv2d(inplanes, out, 1, stride, 0, false);
  bn = BatchNorm2d(out);
  ds->register_module("0", conv);
  ds->register_module("1", bn);
  block.register_module("downsample", ds);
}
}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", Conv2d(inplanes, planes, 3, stride, 1, false));
  bn1 = register_module("bn1", BatchNorm2d(planes));
  conv2 = register_module("conv2", Conv2d(planes, planes, 3, 1, 1, false));
  bn2 = register_module("bn2", BatchNorm2d(planes));
  makeDownsample(*this, inplanes, planes, stride, downsample, dsConv, dsBn);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  // in place, as torchvision's ReLU(inplace=True) and `out += identity`: two fewer activation-sized
  // allocations per block, with the same values and gradients
  auto out = bn1->forward(conv1->forward(x)).relu_();
  out = bn2->forward(conv2->forward(out));
  out += dsConv ? dsBn->forward(dsConv->forward(x)) : x;
  return out.relu_();
}

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", Conv2d(inplanes, planes, 1, 1, 0, false));
  bn1 = register_module("bn1", BatchNorm2d(planes));
  conv2 = register_module("conv2", Conv2d(planes, planes, 3, stride, 1, false));
  bn2 = register_module("bn2", BatchNorm2d(planes));
  conv3 = register_module("conv3", Conv2d(planes, planes * 4, 1, 1, 0, false));
  bn3 = register_module("bn3", BatchNorm2d(planes * 4));
  makeDownsample(*this, inplanes, planes * 4, stride, downsample, dsConv, dsBn);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  // in place, as torchvision (see BasicBlockImpl::forward)
  auto out = bn1->forward(conv1->forward(x)).relu_();
  out = bn2->forward(conv2->forward(out)).relu_();
  out = bn3->forward(conv3->forward(out));
  out += dsConv ? dsBn->forward(dsConv->forward(x)) : x;
  return out.relu_();
}

ResNet::ResNet(const NetOptions& o) : Net(o) {
  if (o.block != "basic" && o.block != "bottleneck") throw std::invalid_argument(o.arch + ": unknown ResNet block '" + o.block + "'");
  if (o.layers.size() != 4) throw std::invalid_argument(o.arch + ": a ResNet has 4 layers, got " + std::to_string(o.layers.size()));
  for (auto n : o.layers)
    if (n < 1) throw std::invalid_argument(o.arch + ": every ResNet layer needs at least one block");
  const bool bottleneck = o.block == "bottleneck";
  const std::vector<int64_t>& layers = o.layers;
  int64_t expansion = bottleneck ? 4 : 1;
  conv1 = register_module("conv1", Conv2d(3, 64, 7, 2, 3, false));
  bn1 = register_module("bn1", BatchNorm2d(64));
  int64_t inplanes = 64;
  const int64_t planes[] = {64, 128, 256, 512};
  for (int l = 0; l < 4; ++l) {
    Container layer;
    for (int64_t b = 0; b < layers[l]; ++b) {
      int64_t stride = (b == 0 && l > 0) ? 2 : 1;
      if (bottleneck) {
        Bottleneck blk(inplanes, planes[l], stride);
        layer->register_module(std::to_string(b), blk);
        blocks.push_back([blk](const torch::Tensor& x) mutable { return blk->forward(x); });
      } else {
        BasicBlock blk(inplanes, planes[l], stride);
        layer->register_module(std::to_string(b), blk);
        blocks.push_back([blk](const torch::Tensor& x) mutable { return blk->forward(x); });
      }
      inplanes = planes[l] * expansion;
    }
    register_module("layer" + std::to_string(l + 1), layer);
  }
  registerHead("fc", 512 * expansion);
  collectMaskSlots();
}

torch::Tensor ResNet::runStage(int64_t stage, const torch::Tensor& x) {
  if (stage == 0) return torch::max_pool2d(bn1->forward(conv1->forward(x)).relu_(), {3, 3}, {2, 2}, {1, 1});
  if (stage < numStages() - 1) return blocks[stage - 1](x);
  return head(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
}

int64_t ResNet::stageOf(const std::string& name) const {
  if (name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0) return 0;
  if (name.rfind("fc.", 0) == 0) return numStages() - 1;
  if (name.rfind("layer", 0) == 0 && name.size() > 7 && name[6] == '.') {
    const int l = name[5] - '1';
    if (l < 0 || l > 3) return -1;
    const auto dot = name.find('.', 7);
    if (dot == std::string::npos) return -1;
    int64_t b = 0;
    try {
      b = std::stoll(name.substr(7, dot - 7));
    } catch (const std::exception&) {
      return -1;
    }
    if (b < 0 || b >= opts.layers[l]) return -1;
    int64_t before = 0;
    for (int i = 0; i < l; ++i) before += opts.layers[i];
    return 1 + before + b;
  }
  return -1;
}

}  // namespace spurmem
