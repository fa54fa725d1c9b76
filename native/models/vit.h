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

/// A ViT of NetOptions::width, depth, heads and patchSize (deit_tiny 192/12/3/16, deit_small 384/12/6/16,
/// deit_base 768/12/12/16, vit_large 1024/24/16/16). Input [B, 3, S, S] with S = NetOptions::imageSize, a
/// multiple of the patch size P; (S/P)^2 + 1 tokens; LayerNorm eps NetOptions::lnEps (timm 1e-6, the
/// original 1e-5).
struct VisionTransformer : Net {
  explicit VisionTransformer(const NetOptions& o);
  torch::Tensor runStage(int64_t stage, const torch::Tensor& x) override;
  int64_t numStages() const override { return depth + 2; }
  /// cls_token, pos_embed, patch_embed.*: 0; blocks.<i>.*: 1 + i; norm.*, head.*: the last stage.
  int64_t stageOf(const std::string& name) const override;
  std::string headName() const override { return "head"; }
  /// timm's checkpoint filter: a `pos_embed` of another square grid is resampled (resamplePosEmbed).
  bool adaptEntry(const std::string& key, torch::Tensor& src, const torch::Tensor& dst, std::string& note) override;

  int64_t dim, depth, heads, grid;
  Conv2d patchProj{nullptr};
  torch::Tensor cls_token, pos_embed;
  std::vector<ViTBlock> blocks;
  LayerNorm norm{nullptr};
};

/// timm's resample_abs_pos_embed: a position embedding `src` [1, 1 + g*g, D] resized to `tokens` = 1 + n*n
/// tokens: the class token is kept, the g x g grid resized bicubically (antialiased, align_corners false).
/// Returns an undefined tensor when either token count is not 1 + a square.
torch::Tensor resamplePosEmbed(const torch::Tensor& src, int64_t tokens, int64_t& oldGrid, int64_t& newGrid);

}  // namespace spurmem
