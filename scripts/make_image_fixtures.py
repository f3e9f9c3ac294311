#!/usr/bin/env python3
"""Writes the image fixtures of Tests/NSTModelTests/Fixtures/images with Pillow.

    ~/.venv-ref/bin/python scripts/make_image_fixtures.py

* resize: two odd-sized RGB sources and Pillow's `resize((w, h), Image.BILINEAR)` of each to
  several targets (shrink, enlarge, mixed, one axis only, same size, both sides of Pillow 13's
  vertical-pass-first rule: 50x61 -> 45x51 is horizontal first, 45x50 vertical first);
  listed in resize_cases.json.
* decode: JPEGs (4:2:0, 4:4:4, 4:2:2, progressive, greyscale, CMYK) and PNG variants (L, 1-bit,
  2-bit grey, palette, palette + tRNS, grey + tRNS, RGBA, LA, 16-bit RGB/RGBA/LA, Adam7 interlaced),
  each with Pillow's `Image.open(f).convert("RGB")` saved as `<name>.expected.png`; listed in
  decode_cases.json. 16-bit greyscale is the exception: Pillow clips I;16 to 255 when converting,
  our decoder keeps the high byte, so its expected file is the high byte (computed with numpy).
"""
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NSTModelTests", "Fixtures", "images")


def scene(w, h, seed):
    """A smooth gradient with blocks and noise: structure and high frequencies for resizing."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 128 + 100 * np.sin(x / 3 + y / 5)], -1)
    for _ in range(4):
        x0, y0 = rng.integers(0, w - 4), rng.integers(0, h - 4)
        img[y0:y0 + rng.integers(3, 12), x0:x0 + rng.integers(3, 12)] = rng.integers(0, 256, 3)
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_raw_png(path, arr, color_type, depth, interlace=False, extra=b""):
    """Minimal PNG writer for layouts Pillow cannot save (16-bit RGB, 2-bit grey, Adam7)."""
    h, w = arr.shape[:2]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    a = arr.reshape(h, w, channels)

    def rows(sub):
        out = b""
        for r in sub:
            if depth == 16:
                line = r.astype(">u2").tobytes()
            elif depth == 8:
                line = r.astype(np.uint8).tobytes()
            else:  # packed grey
                bits = "".join(format(int(v), f"0{depth}b") for v in r.reshape(-1))
                bits += "0" * (-len(bits) % 8)
                line = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
            out += b"\x00" + line
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            sub = a[y0::dy, x0::dx]
            if sub.size:
                raw += rows(sub)
    else:
        raw = rows(a)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))

    # MARK: resize
    cases = []
    sources = {"src_37x23.png": scene(37, 23, 1), "src_50x61.png": scene(50, 61, 2)}
    targets = {
        "src_37x23.png": [(16, 10), (80, 50), (20, 40), (37, 11), (60, 23), (37, 23), (5, 3), (1, 1)],
        "src_50x61.png": [(17, 13), (64, 80), (71, 30), (50, 64), (7, 5), (49, 60), (45, 51), (45, 50)],
    }
    for name, arr in sources.items():
        Image.fromarray(arr).save(os.path.join(OUT, name))
        for w, h in targets[name]:
            out = f"resize_{name[4:-4]}_to_{w}x{h}.png"
            Image.open(os.path.join(OUT, name)).convert("RGB").resize((w, h), Image.BILINEAR).save(os.path.join(OUT, out))
            cases.append({"source": name, "width": w, "height": h, "expected": out})
    with open(os.path.join(OUT, "resize_cases.json"), "w") as f:
        json.dump(cases, f, indent=1)

    # MARK: decode
    base = scene(45, 33, 3)
    rgb = Image.fromarray(base)
    decode = []

    def expect(name, expected_arr=None):
        path = os.path.join(OUT, name)
        arr = np.asarray(Image.open(path).convert("RGB")) if expected_arr is None else expected_arr
        exp = name.rsplit(".", 1)[0] + ".expected.png"
        Image.fromarray(arr).save(os.path.join(OUT, exp))
        decode.append({"file": name, "expected": exp})

    rgb.save(os.path.join(OUT, "jpeg_420.jpg"), quality=85)
    rgb.save(os.path.join(OUT, "jpeg_444.jpg"), quality=90, subsampling=0)
    rgb.save(os.path.join(OUT, "jpeg_422.jpg"), quality=80, subsampling=1)
    rgb.save(os.path.join(OUT, "jpeg_progressive.jpg"), quality=85, progressive=True)
    rgb.convert("L").save(os.path.join(OUT, "jpeg_gray.jpg"), quality=85)
    rgb.convert("CMYK").save(os.path.join(OUT, "jpeg_cmyk.jpg"), quality=90)
    for n in ["jpeg_420.jpg", "jpeg_444.jpg", "jpeg_422.jpg", "jpeg_progressive.jpg", "jpeg_gray.jpg", "jpeg_cmyk.jpg"]:
        expect(n)

    rgb.convert("L").save(os.path.join(OUT, "png_gray8.png"))
    rgb.convert("1").save(os.path.join(OUT, "png_gray1.png"))
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.save(os.path.join(OUT, "png_palette.png"))
    pal.save(os.path.join(OUT, "png_palette_trns.png"), transparency=3)
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray((np.arange(45 * 33).reshape(33, 45) % 256).astype(np.uint8)))
    rgba.save(os.path.join(OUT, "png_rgba.png"))
    rgba.convert("LA").save(os.path.join(OUT, "png_la.png"))
    gray = np.asarray(rgb.convert("L"))
    rgb.convert("L").save(os.path.join(OUT, "png_gray_trns.png"), transparency=int(gray[0, 0]))
    for n in ["png_gray8.png", "png_gray1.png", "png_palette.png", "png_palette_trns.png", "png_rgba.png", "png_la.png", "png_gray_trns.png"]:
        expect(n)

    yy, xx = np.mgrid[0:33, 0:45]
    wide = base.astype(np.uint16) * 256 + ((xx * 37 + yy * 11) % 256)[..., None].astype(np.uint16)
    write_raw_png(os.path.join(OUT, "png_rgb16.png"), wide, 2, 16)
    alpha16 = (xx * 1400 + yy * 50)[..., None].astype(np.uint16)
    write_raw_png(os.path.join(OUT, "png_rgba16.png"), np.concatenate([wide, alpha16], -1), 6, 16)
    write_raw_png(os.path.join(OUT, "png_la16.png"), np.concatenate([wide[..., :1], alpha16], -1), 4, 16)
    write_raw_png(os.path.join(OUT, "png_gray2.png"), (gray >> 6)[..., None], 0, 2)
    write_raw_png(os.path.join(OUT, "png_interlaced.png"), base, 2, 8, interlace=True)
    for n in ["png_rgb16.png", "png_rgba16.png", "png_la16.png", "png_gray2.png", "png_interlaced.png"]:
        expect(n)
    write_raw_png(os.path.join(OUT, "png_gray16.png"), wide[..., :1], 0, 16)
    expect("png_gray16.png", np.repeat((wide[..., :1] >> 8).astype(np.uint8), 3, -1))

    with open(os.path.join(OUT, "decode_cases.json"), "w") as f:
        json.dump(decode, f, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(cases)} resize cases, {len(decode)} decode cases, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
