#!/usr/bin/env python3
"""A small set of real photographs for tuning demonstrations (docs/tuning.md).

Takes the photographs scikit-image ships (and any extra JPEG/PNG files given with --extra), and
writes 256x256 JPEGs into OUT:
  - training images: nine overlapping square crops (3x3 grid, 60% of the short side) of each
    training photograph, named a-<photo>-<k>.jpg;
  - held-out images: the centre square of each --held-out photograph, named zz-<i>-<photo>.jpg,
    so they sort last and a job with "validation_images": N (N = their count) holds out exactly
    them; the first of them is what the workers' previews show.

Needs Pillow and scikit-image (a virtual environment outside the repository; CI does not run this):
    ~/.venv-ref/bin/pip install scikit-image pillow
    ~/.venv-ref/bin/python scripts/make-photo-set.py OUT [--extra FILE ...] [--held-out chelsea,coffee,...]
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image


def skimage_photos():
    import skimage.data as d
    names = ["astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
             "hubble_deep_field", "retina", "immunohistochemistry", "camera", "coins", "moon",
             "brick", "gravel", "grass", "colorwheel"]
    out = {}
    for n in names:
        f = getattr(d, n, None)
        if f is None:
            continue
        try:
            a = f()
        except Exception as e:  # some need a download; skip them
            print(f"skipping {n}: {e}", file=sys.stderr)
            continue
        if isinstance(a, tuple):
            a = a[0]
        a = np.asarray(a)
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        if a.dtype != np.uint8:
            a = (255 * (a - a.min()) / max(1e-9, float(a.max() - a.min()))).astype(np.uint8)
        out[n] = Image.fromarray(a[..., :3])
    return out


def square(img, cx, cy, side):
    return img.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--extra", nargs="*", default=[], help="more photographs (JPEG or PNG)")
    p.add_argument("--held-out", default="amber,chelsea,coffee,astronaut",
                   help="comma-separated photo names kept out of training (validation), in order")
    p.add_argument("--size", type=int, default=256)
    a = p.parse_args()
    photos = skimage_photos()
    for path in a.extra:
        photos[os.path.splitext(os.path.basename(path))[0].replace("_", "-")] = Image.open(path).convert("RGB")
    held = [h for h in a.held_out.split(",") if h]
    missing = [h for h in held if h not in photos]
    if missing:
        sys.exit(f"held-out photos not found: {missing} (have {sorted(photos)})")
    os.makedirs(a.out, exist_ok=True)
    n_train = 0
    for name, img in sorted(photos.items()):
        if name in held:
            continue
        w, h = img.size
        side = 0.6 * min(w, h)
        for i, fy in enumerate((0.3, 0.5, 0.7)):
            for j, fx in enumerate((0.3, 0.5, 0.7)):
                cx = min(max(fx * w, side / 2), w - side / 2)
                cy = min(max(fy * h, side / 2), h - side / 2)
                crop = square(img, cx, cy, side).resize((a.size, a.size), Image.LANCZOS)
                crop.save(os.path.join(a.out, f"a-{name}-{3 * i + j}.jpg"), quality=92)
                n_train += 1
    for k, name in enumerate(held):
        img = photos[name]
        w, h = img.size
        s = min(w, h)
        square(img, w / 2, h / 2, s).resize((a.size, a.size), Image.LANCZOS).save(
            os.path.join(a.out, f"zz-{k}-{name}.jpg"), quality=92)
    print(f"{a.out}: {n_train} training crops of {len(photos) - len(held)} photographs, "
          f"{len(held)} held-out photographs ({', '.join(held)}): use \"validation_images\": {len(held)}")


if __name__ == "__main__":
    main()
