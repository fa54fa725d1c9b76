// See jpeg_decode.h. Errors leave libjpeg through longjmp back to decodeJpeg, which cleans up and throws.
#include "image/jpeg_decode.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#ifdef SPURMEM_HAVE_JPEG
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jerror.h>
#include <jpeglib.h>
#endif

namespace spurmem::image {

#ifdef SPURMEM_HAVE_JPEG

namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
  bool truncated = false;
};

void onError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (msg_level -1) other than the premature end of the data are ignored, as PIL ignores them;
// trace messages are never printed.
void onMessage(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = true;
}

void silent(j_common_ptr) {}

}  // namespace

bool jpegDecoderAvailable() { return true; }

bool decodeJpeg(const uint8_t* bytes, size_t size, JpegPixels& out) {
  if (size < 3 || bytes[0] != 0xFF || bytes[1] != 0xD8 || bytes[2] != 0xFF) return false;
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = onError;
  err.pub.emit_message = onMessage;
  err.pub.output_message = silent;
  // what changes after setjmp lives on the heap (a non-volatile local changed after setjmp is
  // indeterminate after the longjmp); the pointer itself never changes
  const auto held = std::make_unique<JpegPixels>();
  JpegPixels& result = *held;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw std::runtime_error(err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  const bool grey = cinfo.num_components == 1;
  if (!(grey || cinfo.num_components == 3) || cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK ||
      cinfo.data_precision != 8) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  result.width = static_cast<int>(cinfo.output_width);
  result.height = static_cast<int>(cinfo.output_height);
  result.channels = cinfo.output_components;
  const size_t stride = static_cast<size_t>(result.width) * result.channels;
  result.data.resize(stride * result.height);
  JSAMPROW rows[16];
  while (cinfo.output_scanline < cinfo.output_height && !err.truncated) {
    const JDIMENSION at = cinfo.output_scanline;
    const int want = std::min<int>(16, static_cast<int>(cinfo.output_height - at));
    for (int r = 0; r < want; r++) rows[r] = result.data.data() + (at + r) * stride;
    jpeg_read_scanlines(&cinfo, rows, static_cast<JDIMENSION>(want));
  }
  if (!err.truncated) jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (err.truncated)
    throw std::runtime_error("truncated JPEG: the data ends before the image does (" + std::to_string(size) + " bytes)");
  out = std::move(result);
  return true;
}

#else

bool jpegDecoderAvailable() { return false; }

bool decodeJpeg(const uint8_t*, size_t, JpegPixels&) { return false; }

#endif

}  // namespace spurmem::image
