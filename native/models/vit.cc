#include "models/vit.h"

#include "torch_compat.h"

#include <cmath>

namespace spurmem {

AttentionImpl::AttentionImpl(int64_t dim, int64_t h) : heads(h) {
  qkv = register_module("qkv", Linear(dim, dim * 3));
  proj = register_module("proj", Linear(dim, dim));
}

// x: [B, N, C] -> [B, N, C]. qkv gives [B, N, 3, heads, C/heads]; each head attends with
// softmax(q k^T / sqrt(C/heads)) v (compat::attention: fused kernels on libtorch >= 2.0).
torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), hd = C / heads;
  auto qkvOut = qkv->forward(x).reshape({B, N, 3, heads, hd}).permute({2, 0, 3, 1, 4});  // [3, B, h, N, hd]
  auto parts = qkvOut.unbind(0);
  auto y = compat::attention(parts[0], parts[1], parts[2]);
  return proj->forward(y.transpose(1, 2).reshape({B, N, C}));
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", Linear(dim, hidden));
  fc2 = register_module("fc2", Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2->forward(torch::gelu(fc1->forward(x))); }

ViTBlockImpl::ViTBlockImpl(int64_t dim, int64_t heads, double eps) {
  norm1 = register_module("norm1", LayerNorm(dim, eps));
  attn = register_module("attn", Attention(dim, heads));
  norm2 = register_module("norm2", LayerNorm(dim, eps));
  mlp = register_module("mlp", Mlp(dim, dim * 4));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x) {
  auto y = x + attn->forward(norm1->forward(x));
  return y + mlp->forward(norm2->forward(y));
}

VisionTransformer::VisionTransformer(const NetOptions& o) : Net(o) {
  dim = o.width;
  depth = o.depth;
  heads = o.heads;
  const int64_t patch = o.patchSize;
  if (dim < 1 || depth < 1 || heads < 1 || patch < 1 || dim % heads != 0)
    throw std::invalid_argument(o.arch + ": a ViT needs a positive width, depth, heads and patch size, the width a multiple of heads");
  if (o.imageSize % patch != 0 || o.imageSize < patch)
    throw std::invalid_argument("ViT image size must be a positive multiple of " + std::to_string(patch) + ", got " + std::to_string(o.imageSize));
  grid = o.imageSize / patch;
  // timm registers cls_token and pos_embed first, then patch_embed, blocks, norm, head.
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, dim}));
  pos_embed = register_parameter("pos_embed", torch::empty({1, grid * grid + 1, dim}));
  {
    torch::NoGradGuard g;
    pos_embed.normal_(0.0, 0.02).clamp_(-2.0, 2.0);  // trunc_normal_(std=.02, a=-2, b=2): the bounds lie 100 std out
    torch::nn::init::normal_(cls_token, 0.0, 1e-6);
  }
  Container pe;
  patchProj = Conv2d(3, dim, patch, patch, 0, true);
  pe->register_module("proj", patchProj);
  register_module("patch_embed", pe);
  Container bl;
  for (int64_t i = 0; i < depth; ++i) {
    ViTBlock b(dim, heads, o.lnEps);
    bl->register_module(std::to_string(i), b);
    blocks.push_back(b);
  }
  register_module("blocks", bl);
  norm = register_module("norm", LayerNorm(dim, o.lnEps));
  registerHead("head", dim);
  maskSlots.clear();
  for (int64_t i = 0; i < depth; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    maskSlots[p + "attn.qkv.weight"] = &blocks[i]->attn->qkv->mask;
    maskSlots[p + "attn.proj.weight"] = &blocks[i]->attn->proj->mask;
    maskSlots[p + "mlp.fc1.weight"] = &blocks[i]->mlp->fc1->mask;
    maskSlots[p + "mlp.fc2.weight"] = &blocks[i]->mlp->fc2->mask;
  }
}

torch::Tensor VisionTransformer::runStage(int64_t stage, const torch::Tensor& x) {
  if (stage == 0) {
    auto y = patchProj->forward(x).flatten(2).transpose(1, 2);  // [B, N, D]
    auto cls = cls_token.expand({y.size(0), -1, -1});
    return torch::cat({cls, y}, 1) + pos_embed;
  }
  if (stage < numStages() - 1) return blocks[stage - 1]->forward(x);
  return head(norm->forward(x).select(1, 0));
}

int64_t VisionTransformer::stageOf(const std::string& name) const {
  if (name == "cls_token" || name == "pos_embed" || name.rfind("patch_embed.", 0) == 0) return 0;
  if (name.rfind("norm.", 0) == 0 || name.rfind("head.", 0) == 0) return numStages() - 1;
  if (name.rfind("blocks.", 0) == 0) {
    const auto dot = name.find('.', 7);
    if (dot == std::string::npos) return -1;
    int64_t b = 0;
    try {
      b = std::stoll(name.substr(7, dot - 7));
    } catch (const std::exception&) {
      return -1;
    }
    return b >= 0 && b < depth ? 1 + b : -1;
  }
  return -1;
}

namespace {
/// g when n = 1 + g*g, else -1.
int64_t squareGrid(int64_t n) {
  int64_t g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n - 1))));
  return g * g + 1 == n ? g : -1;
}
}  // namespace

torch::Tensor resamplePosEmbed(const torch::Tensor& src, int64_t tokens, int64_t& oldG, int64_t& newG) {
  oldG = squareGrid(src.size(1));
  newG = squareGrid(tokens);
  if (oldG < 0 || newG < 0) return {};
  auto cls = src.narrow(1, 0, 1).to(torch::kFloat);
  auto grid = src.narrow(1, 1, oldG * oldG).to(torch::kFloat).reshape({1, oldG, oldG, -1}).permute({0, 3, 1, 2});
  namespace F = torch::nn::functional;
  grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{newG, newG})
                                  .mode(torch::kBicubic)
                                  .align_corners(false)
                                  .antialias(true));
  grid = grid.permute({0, 2, 3, 1}).reshape({1, newG * newG, -1});
  return torch::cat({cls, grid}, 1);
}

bool VisionTransformer::adaptEntry(const std::string& key, torch::Tensor& src, const torch::Tensor& dst, std::string& note) {
  if (key != "pos_embed" || src.dim() != 3 || dst.dim() != 3 || src.size(2) != dst.size(2) || src.size(1) == dst.size(1)) return false;
  int64_t oldG = 0, newG = 0;
  auto resized = resamplePosEmbed(src, dst.size(1), oldG, newG);
  if (!resized.defined()) return false;
  src = resized;
  note = key + " " + std::to_string(oldG) + "x" + std::to_string(oldG) + " -> " + std::to_string(newG) + "x" + std::to_string(newG);
  return true;
}

}  // namespace spurmem
