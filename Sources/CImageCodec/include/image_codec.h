#ifndef IMAGE_CODEC_H
#define IMAGE_CODEC_H

// JPEG and PNG decode/encode for NSTModel.
//
// libjpeg and libpng report fatal errors by longjmp. Every function here does its own setjmp,
// so no longjmp ever leaves this file: callers (Swift) see a plain return code and, on failure,
// a NUL-terminated message in the caller's `err` buffer. Buffers returned through `*_out`
// pointers are malloc'ed and must be released with nst_free; on failure nothing is returned
// and nothing leaks.

#include <stddef.h>
#include <stdint.h>

#define NST_OK 0
#define NST_ERR_NOT_IMAGE 1    // neither the JPEG nor the PNG signature
#define NST_ERR_CORRUPT 2      // decoder error: truncated, bad data, unsupported variant
#define NST_ERR_TOO_LARGE 3    // dimensions above NST_MAX_SIDE or NST_MAX_PIXELS
#define NST_ERR_NO_MEMORY 4
#define NST_ERR_ARGUMENT 5     // bad arguments (encode of an empty image, quality out of range)

#define NST_MAX_SIDE 30000
#define NST_MAX_PIXELS 300000000LL

/// Decodes a JPEG (sniffed by FF D8 FF) or PNG (8-byte signature) held in memory into 8-bit
/// interleaved RGB, row-major, like PIL's `Image.open(...).convert("RGB")`: grayscale is
/// replicated, palettes expanded, alpha and tRNS dropped (not composited), 16-bit samples keep
/// their high byte, Adobe CMYK/YCCK JPEGs are converted as PIL does. One deliberate difference:
/// PIL clips 16-bit greyscale PNGs (mode I;16) to 255 when converting to RGB; we keep the high
/// byte like every other 16-bit layout. JPEG uses libjpeg's default
/// decompression (JDCT_ISLOW, fancy upsampling), as PIL does. A JPEG that ends early is an error.
/// On NST_ERR_TOO_LARGE, *w and *h hold the offending dimensions.
int nst_decode_image(const uint8_t *bytes, size_t len, uint8_t **rgb_out, int *w, int *h,
                     char *err, size_t errlen);

/// Encodes 8-bit interleaved RGB (w*h*3 bytes) as a non-interlaced 8-bit RGB PNG.
int nst_encode_png(const uint8_t *rgb, int w, int h, uint8_t **out, size_t *outlen,
                   char *err, size_t errlen);

/// Encodes 8-bit interleaved RGB as a baseline JPEG with 4:2:0 chroma subsampling (libjpeg
/// defaults); quality 1...100.
int nst_encode_jpeg(const uint8_t *rgb, int w, int h, int quality, uint8_t **out,
                    size_t *outlen, char *err, size_t errlen);

/// Frees a buffer returned by this codec.
void nst_free(void *p);

#endif
