// timm/DeiT VisionTransformer (vision_transformer.py): patch 16, class token, learned position
// embedding, pre-norm blocks with qkv bias, MLP ratio 4, exact GELU, final LayerNorm, head on the class
// token. Names: cls_token, pos_embed, patch_embed.proj, blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,
// mlp.fc1,mlp.fc2}, norm, head.
#pragma once

#include "models/net.h"

namespace spurmem {

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);
  Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct ViTBlockImpl : torch::nn::Module {
  ViTBlockImpl(int64_t dim, int64_t heads, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(ViTBlock);

/// deit_tiny 192/12/3, deit_small 384/12/6, deit_base 768/12/12, vit_large 1024/24/16 (dim/depth/heads);
/// NetOptions::depth > 0 overrides the depth. Input [B, 3, S, S] with S = NetOptions::imageSize, a
/// multiple of 16; (S/16)^2 + 1 tokens; LayerNorm eps NetOptions::lnEps (timm 1e-6, the original 1e-5).
struct VisionTransformer : Net {
  explicit VisionTransformer(const NetOptions& o);
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string headName() const override { return "head"; }

  static void dims(const std::string& arch, int64_t& dim, int64_t& depth, int64_t& heads);
  int64_t dim, depth, heads, grid;
  Conv2d patchProj{nullptr};
  torch::Tensor cls_token, pos_embed;
  std::vector<ViTBlock> blocks;
  LayerNorm norm{nullptr};
};

}  // namespace spurmem
