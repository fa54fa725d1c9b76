// JPEG decoding with the system libjpeg (libjpeg-turbo through the classic jpeglib.h API), as PIL decodes
// (no Node-API, no libtorch).
//
// PIL's JpegDecode.c asks libjpeg for JCS_RGB (3-component files) or JCS_GRAYSCALE (1 component) and keeps
// libjpeg's defaults otherwise: the accurate integer IDCT (JDCT_ISLOW) and fancy upsampling. This decoder
// does the same, so with the library PIL links (Debian's libjpeg62-turbo) it gives PIL's samples for
// baseline and progressive files, any chroma subsampling and restart intervals. Files it does not handle
// (not a JPEG, 4-component CMYK/YCCK, other sample precisions) are left to another decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace spurmem::image {

/// Decoded JPEG samples: width * height * channels bytes, interleaved (channels 3 = RGB, 1 = grey).
struct JpegPixels {
  std::vector<uint8_t> data;
  int width = 0;
  int height = 0;
  int channels = 0;
};

/// Whether the addon was built with libjpeg (false: decodeJpeg never handles a file).
bool jpegDecoderAvailable();

/// Decodes `size` bytes of a JPEG file into `out`.
/// @returns false (out untouched) when this decoder does not handle the data: not a JPEG (no FFD8 start),
///   a component count other than 1 or 3, a CMYK/YCCK colour space, or an addon built without libjpeg
/// @throws std::runtime_error with libjpeg's message for corrupt data, and "truncated JPEG: ..." when the
///   data ends before the image does (libjpeg's premature-end warning, which PIL reports as a truncated file)
bool decodeJpeg(const uint8_t* bytes, size_t size, JpegPixels& out);

}  // namespace spurmem::image
