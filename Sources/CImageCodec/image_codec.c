// JPEG (libjpeg-turbo) and PNG (libpng16) codec with setjmp-contained error handling.
// See include/image_codec.h for the contract. Every fatal library error longjmps back into the
// function that started the work, which frees what it allocated and returns an error code.

#include "image_codec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

// MARK: - Helpers

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int check_dims(long long w, long long h, char *err, size_t errlen) {
    if (w <= 0 || h <= 0) {
        set_err(err, errlen, "invalid dimensions %lldx%lld", w, h);
        return NST_ERR_CORRUPT;
    }
    if (w > NST_MAX_SIDE || h > NST_MAX_SIDE || w * h > NST_MAX_PIXELS) {
        set_err(err, errlen, "dimensions %lldx%lld exceed the limit (%d px a side, %lld pixels)",
                w, h, NST_MAX_SIDE, (long long)NST_MAX_PIXELS);
        return NST_ERR_TOO_LARGE;
    }
    return NST_OK;
}

void nst_free(void *p) { free(p); }

// MARK: - libjpeg error handling

struct jpeg_err_ctx {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
};

static void jpeg_on_error(j_common_ptr cinfo) {
    struct jpeg_err_ctx *ctx = (struct jpeg_err_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, ctx->msg);
    longjmp(ctx->jump, 1);
}

// Warnings are silent and tolerated (as PIL tolerates them), except premature end of data:
// libjpeg would pad the image with grey, PIL raises "image file is truncated"; so do we.
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        struct jpeg_err_ctx *ctx = (struct jpeg_err_ctx *)cinfo->err;
        snprintf(ctx->msg, sizeof ctx->msg, "truncated JPEG (premature end of data)");
        longjmp(ctx->jump, 1);
    }
    cinfo->err->num_warnings++;
}

// MARK: - JPEG decode

// PIL's CMYK -> RGB (Convert.c cmyk2rgb) on Adobe-inverted samples, as PIL reads "CMYK;I".
static inline uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, int w) {
    for (int x = 0; x < w; x++) {
        int nk = in[4 * x + 3];  // stored inverted: 255 - k
        for (int c = 0; c < 3; c++) {
            int ink = 255 - in[4 * x + c];
            out[3 * x + c] = (uint8_t)(nk - muldiv255(ink, nk));
        }
    }
}

static int decode_jpeg(const uint8_t *bytes, size_t len, uint8_t **rgb_out, int *w, int *h,
                       char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_err_ctx jerr;
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile scratch = NULL;

    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_on_error;
    jerr.pub.emit_message = jpeg_on_message;
    jerr.msg[0] = 0;
    if (setjmp(jerr.jump)) {
        set_err(err, errlen, "JPEG: %s", jerr.msg);
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        free(scratch);
        return NST_ERR_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);

    int code = check_dims(cinfo.image_width, cinfo.image_height, err, errlen);
    if (code != NST_OK) {
        *w = (int)cinfo.image_width;
        *h = (int)cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return code;
    }
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; break;
    case JCS_RGB:
    case JCS_YCbCr: cinfo.out_color_space = JCS_RGB; break;
    default:
        set_err(err, errlen, "JPEG: unsupported colour space (%d components)",
                cinfo.num_components);
        jpeg_destroy_decompress(&cinfo);
        return NST_ERR_CORRUPT;
    }
    jpeg_start_decompress(&cinfo);

    const int width = (int)cinfo.output_width, height = (int)cinfo.output_height;
    const int comps = cinfo.output_components;
    rgb = malloc((size_t)width * (size_t)height * 3);
    if (comps != 3) scratch = malloc((size_t)width * (size_t)comps);
    if (rgb == NULL || (comps != 3 && scratch == NULL)) {
        set_err(err, errlen, "out of memory decoding a %dx%d JPEG", width, height);
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        free(scratch);
        return NST_ERR_NO_MEMORY;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = rgb + (size_t)cinfo.output_scanline * (size_t)width * 3;
        JSAMPROW row = comps == 3 ? dst : scratch;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            longjmp(jerr.jump, 1);  // cannot happen with a memory source; stay safe
        }
        if (comps == 1) {
            for (int x = 0; x < width; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = scratch[x];
        } else if (comps == 4) {
            cmyk_row_to_rgb(scratch, dst, width);
        }
    }
    // No jpeg_finish_decompress: all scanlines are in; a missing EOI after them is tolerated.
    jpeg_destroy_decompress(&cinfo);
    free(scratch);
    *rgb_out = rgb;
    *w = width;
    *h = height;
    return NST_OK;
}

// MARK: - libpng error handling and memory I/O

struct png_err_ctx {
    jmp_buf jump;
    char msg[200];
};

static void png_on_error(png_structp png, png_const_charp msg) {
    struct png_err_ctx *ctx = (struct png_err_ctx *)png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    longjmp(ctx->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

struct mem_reader {
    const uint8_t *data;
    size_t len, pos;
};

static void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
    struct mem_reader *r = (struct mem_reader *)png_get_io_ptr(png);
    if (n > r->len - r->pos) png_error(png, "truncated PNG (unexpected end of data)");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

struct mem_writer {
    uint8_t *data;
    size_t len, cap;
};

static int mem_writer_reserve(struct mem_writer *b, size_t extra) {
    if (extra <= b->cap - b->len) return 1;
    size_t cap = b->cap ? b->cap : 65536;
    while (extra > cap - b->len) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) return 0;
    b->data = p;
    b->cap = cap;
    return 1;
}

static void png_write_mem(png_structp png, png_bytep d, png_size_t n) {
    struct mem_writer *b = (struct mem_writer *)png_get_io_ptr(png);
    if (!mem_writer_reserve(b, n)) png_error(png, "out of memory");
    memcpy(b->data + b->len, d, n);
    b->len += n;
}

static void png_flush_mem(png_structp png) { (void)png; }

// MARK: - PNG decode

static int decode_png(const uint8_t *bytes, size_t len, uint8_t **rgb_out, int *w, int *h,
                      char *err, size_t errlen) {
    struct png_err_ctx perr;
    struct mem_reader src = {bytes, len, 0};
    uint8_t *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    perr.msg[0] = 0;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &perr, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (info == NULL) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        set_err(err, errlen, "out of memory creating the PNG decoder");
        return NST_ERR_NO_MEMORY;
    }
    if (setjmp(perr.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(rows);
        set_err(err, errlen, "PNG: %s", perr.msg);
        return NST_ERR_CORRUPT;
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);

    png_uint_32 pw, ph;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &pw, &ph, &depth, &ctype, &interlace, NULL, NULL);
    int code = check_dims(pw, ph, err, errlen);
    if (code != NST_OK) {
        *w = (int)pw;
        *h = (int)ph;
        png_destroy_read_struct(&png, &info, NULL);
        return code;
    }
    // PIL's convert("RGB"): expand palette and low bit depths, keep the high byte of 16-bit
    // samples, drop alpha and tRNS transparency without compositing, replicate grey.
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    if ((ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) {
        png_set_strip_alpha(png);
    }
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)pw * 3) {
        png_error(png, "unsupported PNG layout after conversion to 8-bit RGB");
    }

    rgb = malloc((size_t)pw * (size_t)ph * 3);
    rows = malloc(sizeof(png_bytep) * ph);
    if (rgb == NULL || rows == NULL) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < ph; y++) rows[y] = rgb + (size_t)y * pw * 3;
    png_read_image(png, rows);
    // No png_read_end: chunks after the image data (and a missing IEND) are not needed.
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *rgb_out = rgb;
    *w = (int)pw;
    *h = (int)ph;
    return NST_OK;
}

// MARK: - Decode entry point

int nst_decode_image(const uint8_t *bytes, size_t len, uint8_t **rgb_out, int *w, int *h,
                     char *err, size_t errlen) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    *rgb_out = NULL;
    *w = 0;
    *h = 0;
    set_err(err, errlen, "%s", "");
    if (bytes != NULL && len >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
        return decode_jpeg(bytes, len, rgb_out, w, h, err, errlen);
    }
    if (bytes != NULL && len >= 8 && memcmp(bytes, png_sig, 8) == 0) {
        return decode_png(bytes, len, rgb_out, w, h, err, errlen);
    }
    set_err(err, errlen, "not a JPEG or PNG file (%zu bytes, unknown signature)", len);
    return NST_ERR_NOT_IMAGE;
}

// MARK: - PNG encode

int nst_encode_png(const uint8_t *rgb, int w, int h, uint8_t **out, size_t *outlen,
                   char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    int code = check_dims(w, h, err, errlen);
    if (code != NST_OK) return code == NST_ERR_CORRUPT ? NST_ERR_ARGUMENT : code;

    struct png_err_ctx perr;
    struct mem_writer dst = {NULL, 0, 0};
    perr.msg[0] = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &perr, png_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (info == NULL) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        set_err(err, errlen, "out of memory creating the PNG encoder");
        return NST_ERR_NO_MEMORY;
    }
    if (setjmp(perr.jump)) {
        png_destroy_write_struct(&png, &info);
        free(dst.data);
        set_err(err, errlen, "PNG: %s", perr.msg);
        return NST_ERR_CORRUPT;
    }
    png_set_write_fn(png, &dst, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * w * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = dst.data;
    *outlen = dst.len;
    return NST_OK;
}

// MARK: - JPEG encode

struct jpeg_mem_out {
    struct jpeg_destination_mgr pub;
    struct mem_writer buf;
};

static void jpeg_out_init(j_compress_ptr cinfo) {
    struct jpeg_mem_out *d = (struct jpeg_mem_out *)cinfo->dest;
    if (!mem_writer_reserve(&d->buf, 65536)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
    d->pub.next_output_byte = d->buf.data;
    d->pub.free_in_buffer = d->buf.cap;
}

static boolean jpeg_out_empty(j_compress_ptr cinfo) {
    struct jpeg_mem_out *d = (struct jpeg_mem_out *)cinfo->dest;
    d->buf.len = d->buf.cap;  // the whole buffer is full
    if (!mem_writer_reserve(&d->buf, d->buf.cap)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 2);
    d->pub.next_output_byte = d->buf.data + d->buf.len;
    d->pub.free_in_buffer = d->buf.cap - d->buf.len;
    return TRUE;
}

static void jpeg_out_term(j_compress_ptr cinfo) {
    struct jpeg_mem_out *d = (struct jpeg_mem_out *)cinfo->dest;
    d->buf.len = d->buf.cap - d->pub.free_in_buffer;
}

int nst_encode_jpeg(const uint8_t *rgb, int w, int h, int quality, uint8_t **out,
                    size_t *outlen, char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    int code = check_dims(w, h, err, errlen);
    if (code != NST_OK) return code == NST_ERR_CORRUPT ? NST_ERR_ARGUMENT : code;
    if (quality < 1 || quality > 100) {
        set_err(err, errlen, "JPEG quality %d is outside 1...100", quality);
        return NST_ERR_ARGUMENT;
    }

    struct jpeg_compress_struct cinfo;
    struct jpeg_err_ctx jerr;
    struct jpeg_mem_out dst;
    memset(&dst, 0, sizeof dst);
    dst.pub.init_destination = jpeg_out_init;
    dst.pub.empty_output_buffer = jpeg_out_empty;
    dst.pub.term_destination = jpeg_out_term;

    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_on_error;
    jerr.pub.emit_message = jpeg_on_message;
    jerr.msg[0] = 0;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(dst.buf.data);
        set_err(err, errlen, "JPEG: %s", jerr.msg);
        return NST_ERR_CORRUPT;
    }
    jpeg_create_compress(&cinfo);
    cinfo.dest = &dst.pub;
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * (size_t)w * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = dst.buf.data;
    *outlen = dst.buf.len;
    return NST_OK;
}
