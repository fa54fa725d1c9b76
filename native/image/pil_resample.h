// PIL's convert('RGB') and bilinear Image.resize, reproduced bit for bit (no Node-API, no libtorch).
//
// The eval and train transforms of the original (torchvision on PIL images) are
//   Image.open(f).convert('RGB') -> [crop] -> resize((W, H), BILINEAR) -> [centre crop] -> [mirror]
// and these functions produce the same uint8 bytes: the colour conversions of PIL's Convert.c for the modes
// its image plugins open, and the separable, fixed-point resampling of PIL's ImagingResample (Resample.c):
// a triangle filter whose support grows with the reduction factor, coefficients in double precision
// normalised per output pixel and rounded to 22 fractional bits, a horizontal pass into an 8-bit image,
// then a vertical pass, each rounding half up and clamping to 0..255.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spurmem::image {

/// How the decoded samples become RGB, as PIL's convert('RGB') does for the mode PIL opened the file in.
enum class ToRgb {
  Grey,       ///< L / LA / 1 / P-as-grey (8-bit): channel 0 replicated
  Rgb,        ///< RGB / RGBA / P expanded (8-bit): channels 0..2, alpha dropped
  Cmyk,       ///< CMYK (8-bit, PIL's polarity): r = (255-k) - (c·(255-k))/255 with PIL's MULDIV255 rounding
  Grey16Clip, ///< 16-bit greyscale PNG, PIL mode "I": channel 0 clamped to 0..255 (not scaled)
  High16Grey, ///< 16-bit grey + alpha PNG (PIL reads it as RGBA from "LA;16B"): high byte of channel 0
  High16Rgb,  ///< 16-bit RGB / RGBA PNG ("RGB;16B", "RGBA;16B"): high byte of channels 0..2
};

/// A decoded image: interleaved samples, `channels` per pixel, 1 byte each (8-bit) or 2 (16-bit, native endian).
struct SourceImage {
  const void* data = nullptr;
  int width = 0;
  int height = 0;
  int channels = 0;
  int bytesPerSample = 1;
  ToRgb toRgb = ToRgb::Rgb;
};

/// A rectangle in pixels.
struct Rect {
  int left = 0, top = 0, width = 0, height = 0;
};

/// One transform: crop `box` out of the RGB image, resize it to outWidth x outHeight, keep `window` of the
/// result (its left/top inside the resized image), mirror it left-right when `flip`.
struct TransformSpec {
  Rect box;
  int outWidth = 0, outHeight = 0;
  Rect window;
  bool flip = false;
};

/// Throws std::invalid_argument naming what is wrong (sizes, a box or window outside its image, channels).
void checkTransform(const SourceImage& src, const TransformSpec& t);

/// PIL's convert('RGB') of the rows and columns of `box`: box.width * box.height * 3 bytes.
std::vector<uint8_t> convertToRgb(const SourceImage& src, const Rect& box);

/// Coefficients of one axis of PIL's bilinear resampling (precompute_coeffs + normalize_coeffs_8bpc).
struct AxisCoeffs {
  int ksize = 0;                 ///< coefficients stored per output pixel
  std::vector<int> first;        ///< first input pixel used, per output pixel
  std::vector<int> count;        ///< input pixels used, per output pixel
  std::vector<int32_t> weights;  ///< outSize * ksize fixed-point weights (22 fractional bits)
};

/// Coefficients for resizing `inSize` pixels (the whole axis, PIL's box (0, inSize)) to `outSize`.
AxisCoeffs bilinearCoeffs(int inSize, int outSize);

/// The whole transform of `t` on `src`: writes t.window.width * t.window.height * 3 bytes (RGB, HWC) to `out`.
/// Output pixels outside the window are never computed; the bytes are those PIL computes for them.
void pilTransform(const SourceImage& src, const TransformSpec& t, uint8_t* out);

}  // namespace spurmem::image
