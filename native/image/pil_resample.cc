// PIL's convert('RGB') and bilinear resize (see pil_resample.h). Compiled with -ffp-contract=off: the
// coefficients must be the doubles PIL computes, without fused multiply-adds.
#include "image/pil_resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace spurmem::image {
namespace {

// Fractional bits of the fixed-point weights: 32 bits less 8 for the sample and 2 of headroom (PIL's choice).
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = int32_t(1) << (kPrecisionBits - 1);

// The triangle filter of PIL's BILINEAR, support 1.
inline double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// A fixed-point sum back to 0..255: floor division by 2^22, clamped (PIL's clip8).
inline uint8_t clamp8(int32_t v) {
  if (v < 0) return 0;
  const int32_t s = v >> kPrecisionBits;
  return s > 255 ? 255 : static_cast<uint8_t>(s);
}

// PIL's MULDIV255: a·b/255 rounded, with integer shifts.
inline int mulDiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

inline uint8_t clip255(int v) { return v < 0 ? 0 : v > 255 ? 255 : static_cast<uint8_t>(v); }

std::string rectText(const Rect& r) {
  return "(left " + std::to_string(r.left) + ", top " + std::to_string(r.top) + ", " + std::to_string(r.width) + "x" +
         std::to_string(r.height) + ")";
}

bool inside(const Rect& r, int width, int height) {
  return r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 && r.left + r.width <= width && r.top + r.height <= height;
}

}  // namespace

void checkTransform(const SourceImage& src, const TransformSpec& t) {
  if (!src.data || src.width <= 0 || src.height <= 0) throw std::invalid_argument("an empty image");
  if (src.channels < 1 || src.channels > 4) throw std::invalid_argument("channels must be 1..4, got " + std::to_string(src.channels));
  if (src.bytesPerSample != 1 && src.bytesPerSample != 2) throw std::invalid_argument("samples must be 8 or 16 bits");
  const bool sixteen = src.toRgb == ToRgb::Grey16Clip || src.toRgb == ToRgb::High16Grey || src.toRgb == ToRgb::High16Rgb;
  if (sixteen != (src.bytesPerSample == 2)) throw std::invalid_argument("the colour conversion does not fit the sample size");
  const bool colour = src.toRgb == ToRgb::Rgb || src.toRgb == ToRgb::High16Rgb;
  if (colour && src.channels < 3) throw std::invalid_argument("an RGB conversion needs 3 or 4 channels, got " + std::to_string(src.channels));
  if (src.toRgb == ToRgb::Cmyk && src.channels != 4) throw std::invalid_argument("CMYK needs 4 channels, got " + std::to_string(src.channels));
  if (!inside(t.box, src.width, src.height))
    throw std::invalid_argument("crop box " + rectText(t.box) + " is not inside the " + std::to_string(src.width) + "x" +
                                std::to_string(src.height) + " image");
  if (t.outWidth <= 0 || t.outHeight <= 0 || t.outWidth > (1 << 16) || t.outHeight > (1 << 16))
    throw std::invalid_argument("resize size must be 1..65536 pixels a side");
  if (!inside(t.window, t.outWidth, t.outHeight))
    throw std::invalid_argument("window " + rectText(t.window) + " is not inside the resized " + std::to_string(t.outWidth) + "x" +
                                std::to_string(t.outHeight) + " image");
}

std::vector<uint8_t> convertToRgb(const SourceImage& src, const Rect& box) {
  std::vector<uint8_t> out(static_cast<size_t>(box.width) * box.height * 3);
  const int c = src.channels;
  uint8_t* o = out.data();
  for (int y = 0; y < box.height; y++) {
    const size_t rowStart = (static_cast<size_t>(box.top + y) * src.width + box.left) * c;
    if (src.bytesPerSample == 1) {
      const uint8_t* p = static_cast<const uint8_t*>(src.data) + rowStart;
      switch (src.toRgb) {
        case ToRgb::Grey:
          for (int x = 0; x < box.width; x++, p += c, o += 3) o[0] = o[1] = o[2] = p[0];
          break;
        case ToRgb::Rgb:
          if (c == 3) {
            std::memcpy(o, p, static_cast<size_t>(box.width) * 3);
            o += static_cast<size_t>(box.width) * 3;
          } else {
            for (int x = 0; x < box.width; x++, p += c, o += 3) o[0] = p[0], o[1] = p[1], o[2] = p[2];
          }
          break;
        case ToRgb::Cmyk:
          for (int x = 0; x < box.width; x++, p += c, o += 3) {
            const int nk = 255 - p[3];
            o[0] = clip255(nk - mulDiv255(p[0], nk));
            o[1] = clip255(nk - mulDiv255(p[1], nk));
            o[2] = clip255(nk - mulDiv255(p[2], nk));
          }
          break;
        default:
          throw std::invalid_argument("8-bit samples with a 16-bit conversion");
      }
    } else {
      const uint16_t* p = static_cast<const uint16_t*>(src.data) + rowStart;
      switch (src.toRgb) {
        case ToRgb::Grey16Clip:
          for (int x = 0; x < box.width; x++, p += c, o += 3) o[0] = o[1] = o[2] = static_cast<uint8_t>(std::min<int>(p[0], 255));
          break;
        case ToRgb::High16Grey:
          for (int x = 0; x < box.width; x++, p += c, o += 3) o[0] = o[1] = o[2] = static_cast<uint8_t>(p[0] >> 8);
          break;
        case ToRgb::High16Rgb:
          for (int x = 0; x < box.width; x++, p += c, o += 3) {
            o[0] = static_cast<uint8_t>(p[0] >> 8), o[1] = static_cast<uint8_t>(p[1] >> 8), o[2] = static_cast<uint8_t>(p[2] >> 8);
          }
          break;
        default:
          throw std::invalid_argument("16-bit samples with an 8-bit conversion");
      }
    }
  }
  return out;
}

AxisCoeffs bilinearCoeffs(int inSize, int outSize) {
  // PIL computes the box edges in float and everything after in double; for whole-pixel boxes below
  // 2^24 the float values are exact, so doubles from the start give the same numbers.
  const double scale = static_cast<double>(inSize) / outSize;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;
  AxisCoeffs a;
  a.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  a.first.resize(outSize);
  a.count.resize(outSize);
  a.weights.assign(static_cast<size_t>(outSize) * a.ksize, 0);
  std::vector<double> k(a.ksize);
  const double ss = 1.0 / filterscale;
  for (int xx = 0; xx < outSize; xx++) {
    const double center = (xx + 0.5) * scale;
    // both edges rounded by adding 0.5 and truncating toward zero, as PIL does
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; x++) {
      const double w = triangle((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    int32_t* dst = &a.weights[static_cast<size_t>(xx) * a.ksize];
    for (int x = 0; x < xmax; x++) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      // round half away from zero, then truncate (PIL's normalize_coeffs_8bpc)
      dst[x] = w < 0 ? static_cast<int32_t>(-0.5 + w * (1 << kPrecisionBits)) : static_cast<int32_t>(0.5 + w * (1 << kPrecisionBits));
    }
    a.first[xx] = xmin;
    a.count[xx] = xmax;
  }
  return a;
}

void pilTransform(const SourceImage& src, const TransformSpec& t, uint8_t* out) {
  checkTransform(src, t);
  const Rect& box = t.box;
  const Rect& win = t.window;
  // convert('RGB') of the crop (PIL converts the whole image first; the other pixels are never read).
  // 8-bit RGB needs no conversion: the crop is read in place.
  std::vector<uint8_t> converted;
  const uint8_t* rgb;
  size_t rgbStride;  // bytes per row of `rgb`
  if (src.toRgb == ToRgb::Rgb && src.channels == 3 && src.bytesPerSample == 1) {
    rgbStride = static_cast<size_t>(src.width) * 3;
    rgb = static_cast<const uint8_t*>(src.data) + static_cast<size_t>(box.top) * rgbStride + static_cast<size_t>(box.left) * 3;
  } else {
    converted = convertToRgb(src, box);
    rgb = converted.data();
    rgbStride = static_cast<size_t>(box.width) * 3;
  }
  const int inW = box.width, inH = box.height;
  const bool needH = t.outWidth != inW, needV = t.outHeight != inH;

  // rows of the crop that the window's output rows read, and the vertical coefficients
  AxisCoeffs cv;
  int rowFirst = win.top, rowEnd = win.top + win.height;
  if (needV) {
    cv = bilinearCoeffs(inH, t.outHeight);
    rowFirst = cv.first[win.top];
    rowEnd = rowFirst;
    for (int yy = win.top; yy < win.top + win.height; yy++) rowEnd = std::max(rowEnd, cv.first[yy] + cv.count[yy]);
  }
  const int rows = rowEnd - rowFirst;

  // horizontal pass: `rows` rows of the window's columns, 8-bit (PIL's intermediate image is 8-bit too)
  std::vector<uint8_t> mid;
  const uint8_t* midData;
  size_t midStride;  // bytes per row of the intermediate image
  if (needH) {
    const AxisCoeffs ch = bilinearCoeffs(inW, t.outWidth);
    mid.resize(static_cast<size_t>(rows) * win.width * 3);
    for (int y = 0; y < rows; y++) {
      const uint8_t* row = rgb + static_cast<size_t>(rowFirst + y) * rgbStride;
      uint8_t* o = mid.data() + static_cast<size_t>(y) * win.width * 3;
      for (int xx = win.left; xx < win.left + win.width; xx++, o += 3) {
        const int32_t* k = &ch.weights[static_cast<size_t>(xx) * ch.ksize];
        const uint8_t* p = row + static_cast<size_t>(ch.first[xx]) * 3;
        int32_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
        for (int x = 0, n = ch.count[xx]; x < n; x++, p += 3) {
          s0 += p[0] * k[x];
          s1 += p[1] * k[x];
          s2 += p[2] * k[x];
        }
        o[0] = clamp8(s0), o[1] = clamp8(s1), o[2] = clamp8(s2);
      }
    }
    midData = mid.data();
    midStride = static_cast<size_t>(win.width) * 3;
  } else {
    midData = rgb + static_cast<size_t>(rowFirst) * rgbStride + static_cast<size_t>(win.left) * 3;
    midStride = rgbStride;
  }

  // vertical pass into the window, a row of sums at a time (integer sums: the order does not matter)
  const size_t rowBytes = static_cast<size_t>(win.width) * 3;
  std::vector<int32_t> acc(needV ? rowBytes : 0);
  for (int yy = win.top; yy < win.top + win.height; yy++) {
    uint8_t* o = out + static_cast<size_t>(yy - win.top) * rowBytes;
    if (!needV) {
      std::memcpy(o, midData + static_cast<size_t>(yy - rowFirst) * midStride, rowBytes);
    } else {
      const int32_t* k = &cv.weights[static_cast<size_t>(yy) * cv.ksize];
      const int y0 = cv.first[yy] - rowFirst, n = cv.count[yy];
      std::fill(acc.begin(), acc.end(), kHalf);
      for (int y = 0; y < n; y++) {
        const uint8_t* p = midData + static_cast<size_t>(y0 + y) * midStride;
        const int32_t w = k[y];
        int32_t* a = acc.data();
        for (size_t i = 0; i < rowBytes; i++) a[i] += p[i] * w;
      }
      for (size_t i = 0; i < rowBytes; i++) o[i] = clamp8(acc[i]);
    }
    if (t.flip) {
      for (int a = 0, b = win.width - 1; a < b; a++, b--) {
        std::swap(o[a * 3], o[b * 3]);
        std::swap(o[a * 3 + 1], o[b * 3 + 1]);
        std::swap(o[a * 3 + 2], o[b * 3 + 2]);
      }
    }
  }
}

}  // namespace spurmem::image
