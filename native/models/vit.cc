#include "models/vit.h"

#include "torch_compat.h"

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

void VisionTransformer::dims(const std::string& arch, int64_t& d, int64_t& dp, int64_t& h) {
  if (arch == "deit_tiny") { d = 192; dp = 12; h = 3; }
  else if (arch == "deit_small") { d = 384; dp = 12; h = 6; }
  else if (arch == "deit_base") { d = 768; dp = 12; h = 12; }
  else if (arch == "vit_large") { d = 1024; dp = 24; h = 16; }
  else throw std::invalid_argument("unknown ViT '" + arch + "'");
}

VisionTransformer::VisionTransformer(const NetOptions& o) : Net(o) {
  dims(o.arch, dim, depth, heads);
  if (o.depth > 0) depth = o.depth;  // a reduced-depth model (tests, quick CPU runs)
  if (o.imageSize % 16 != 0 || o.imageSize < 16)
    throw std::invalid_argument("ViT image size must be a positive multiple of 16, got " + std::to_string(o.imageSize));
  grid = o.imageSize / 16;
  // timm registers cls_token and pos_embed first, then patch_embed, blocks, norm, head.
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, dim}));
  pos_embed = register_parameter("pos_embed", torch::empty({1, grid * grid + 1, dim}));
  {
    torch::NoGradGuard g;
    pos_embed.normal_(0.0, 0.02).clamp_(-2.0, 2.0);  // trunc_normal_(std=.02, a=-2, b=2): the bounds lie 100 std out
    torch::nn::init::normal_(cls_token, 0.0, 1e-6);
  }
  Container pe;
  patchProj = Conv2d(3, dim, 16, 16, 0, true);
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

torch::Tensor VisionTransformer::forward(const torch::Tensor& x) {
  auto y = patchProj->forward(x).flatten(2).transpose(1, 2);  // [B, N, D]
  auto cls = cls_token.expand({y.size(0), -1, -1});
  y = torch::cat({cls, y}, 1) + pos_embed;
  for (auto& b : blocks) y = b->forward(y);
  y = norm->forward(y);
  return head(y.select(1, 0));
}

}  // namespace spurmem
