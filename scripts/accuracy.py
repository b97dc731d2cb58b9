#!/usr/bin/python3
"""make accuracy: the shipped models on images as people send them.

Generates an evaluation set from the first N test images of MNIST and
Fashion-MNIST (deterministic for a seed: numpy's PCG64 and Pillow, no
clock), in variants a person produces: digits drawn (plain, thin and thick
pens, small and off-centre, touching the frame) and photographed or scanned
on paper (uneven light, shadows, tinted and lined paper, noise, blur, JPEG
compression, rotation up to 15 degrees, frame edges and dust). Then starts
build/mnistd on a free port with a copy of the shipped models and sends
every image to POST /predict as a person would (the raw file, its own
Content-Type), and prints each variant's accuracy as a Markdown table.
The worst variants' misread images are written as contact sheets.
A figure, not an assertion: it is not part of make test.

  scripts/accuracy.py --bin build/mnistd --models models --data data \\
      --out build/accuracy [--n 500] [--seed 17] [--sheets DIR] [--only TEXT]
"""
import argparse
import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# ---- the test splits ----


def idx_images(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)


def idx_labels(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    return np.frombuffer(raw, np.uint8, offset=8)


def find(data, name, stem):
    for f in (stem, stem + ".gz"):
        for d in (os.path.join(data, name), os.path.join(data, name.replace("-", "_"))):
            p = os.path.join(d, f)
            if os.path.exists(p):
                return p
    sys.exit(f"accuracy: no {stem} under {data}/{name} (run make data)")


# ---- rendering ----


def grow(ink, size):
    """28x28 uint8 ink (white on black) -> size x size float in [0, 1]."""
    return np.asarray(Image.fromarray(ink).resize((size, size), Image.BILINEAR), np.float32) / 255


def png_bytes(a):
    b = io.BytesIO()
    Image.fromarray(np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)).save(b, "PNG")
    return b.getvalue(), "image/png"


def jpeg_bytes(rgb, quality):
    b = io.BytesIO()
    Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB").save(b, "JPEG", quality=quality)
    return b.getvalue(), "image/jpeg"


def smooth_mask(h, w, rng):
    """A soft-edged shadow: 1 inside a half-plane at a random angle, 0 out."""
    a = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:h, 0:w]
    d = (x - w * rng.uniform(0.3, 0.7)) * np.cos(a) + (y - h * rng.uniform(0.3, 0.7)) * np.sin(a)
    return 1 / (1 + np.exp(-d / rng.uniform(3, 8)))


def photo(ink, rng, *, gradient=0.0, shadow=0.0, paper=(245, 240, 230), pen=(25, 25, 35),
          lines=False, noise=0.0, blur=0.0, rotate=0.0, quality=90, scale=4, frame_edge=False,
          specks=0, size=(160, 140), offset=None, pen_erode=0):
    """An ink image (28x28, white on black) photographed on paper: RGB
    floats 0-255 composited in reflectance, lit, degraded, as JPEG."""
    w, h = size
    s = 28 * scale
    m = Image.fromarray(ink).resize((s, s), Image.BILINEAR)
    if pen_erode:  # a finer pen at the photo's own scale
        m = m.filter(ImageFilter.MinFilter(pen_erode))
    if rotate:
        m = m.rotate(rotate, resample=Image.BILINEAR)
    m = np.asarray(m, np.float32) / 255
    if offset is None:
        offset = (rng.integers(0, w - s + 1), rng.integers(0, h - s + 1))
    cover = np.zeros((h, w), np.float32)
    ox, oy = offset
    cover[oy:oy + s, ox:ox + s] = m[:h - oy, :w - ox]
    base = np.empty((h, w, 3), np.float32)
    base[:] = paper
    if lines:
        gap = int(rng.integers(16, 24))
        for y in range(int(rng.integers(0, gap)), h, gap):
            base[y:y + 1] = (165, 185, 225)
        mx = int(rng.integers(8, 20))
        base[:, mx:mx + 1] = (225, 120, 120)
    if frame_edge:
        side, depth = int(rng.integers(0, 4)), int(rng.integers(4, 12))
        table = (70, 60, 50)
        if side == 0:
            base[:depth] = table
        elif side == 1:
            base[-depth:] = table
        elif side == 2:
            base[:, :depth] = table
        else:
            base[:, -depth:] = table
    for _ in range(specks):
        y, x = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
        base[y:y + 2, x:x + 2] = pen
    rgb = base * (1 - cover[..., None]) + np.array(pen, np.float32) * cover[..., None]
    light = np.ones((h, w), np.float32)
    if gradient:
        a = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:h, 0:w]
        t = ((x - w / 2) * np.cos(a) + (y - h / 2) * np.sin(a)) / max(w, h)
        light *= 1 - gradient * (t + 0.5)
    if shadow:
        light *= 1 - shadow * smooth_mask(h, w, rng)
    rgb *= light[..., None]
    if blur:
        img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
        rgb = np.asarray(img.filter(ImageFilter.GaussianBlur(blur)), np.float32)
    if noise:
        rgb = rgb + rng.normal(0, noise, rgb.shape)
    return jpeg_bytes(rgb, quality)


def drawn(ink, rng, variant):
    """Digits as drawn on a screen or canvas: PNG."""
    f = ink.astype(np.float32) / 255
    if variant == "plain":
        return png_bytes(f)
    if variant == "thick pen":  # the 3x3 dilation
        return png_bytes(np.asarray(Image.fromarray(ink).filter(ImageFilter.MaxFilter(3)), np.float32) / 255)
    if variant == "thin pen":  # dark on a white canvas, 4x, strokes eroded to a hairline
        g = Image.fromarray(np.uint8(grow(ink, 112) * 255)).filter(ImageFilter.MinFilter(5))
        return png_bytes(1 - np.asarray(g, np.float32) / 255)
    if variant == "small, off-centre":  # 10x10 somewhere in a 28x28 field
        small = np.asarray(Image.fromarray(ink).resize((10, 10), Image.BILINEAR), np.float32) / 255
        out = np.zeros((28, 28), np.float32)
        y, x = rng.integers(0, 19, 2)
        out[y:y + 10, x:x + 10] = small
        return png_bytes(out)
    if variant == "touching the frame":  # cropped to the ink: it touches every edge
        ys, xs = np.nonzero(ink > 30)
        crop = f[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        return png_bytes(crop)
    raise ValueError(variant)


DRAWINGS = ["plain", "thin pen", "thick pen", "small, off-centre", "touching the frame"]


def photos(ink, rng, variant):
    if variant == "photo: uneven light":
        return photo(ink, rng, gradient=0.45, noise=4, quality=85)
    if variant == "photo: shadow":
        return photo(ink, rng, gradient=0.2, shadow=0.45, noise=4, quality=85)
    if variant == "photo: tinted paper, blue pen":
        tint = [(240, 225, 170), (200, 225, 240), (235, 205, 215)][int(rng.integers(0, 3))]
        return photo(ink, rng, paper=tint, pen=(40, 50, 140), gradient=0.25, noise=4, quality=85)
    if variant == "photo: lined paper":
        return photo(ink, rng, lines=True, gradient=0.25, noise=3, quality=85)
    if variant == "photo: noise, blur, JPEG q50":
        return photo(ink, rng, noise=12, blur=1.5, quality=50, gradient=0.2)
    if variant == "photo: rotated up to 15°":
        return photo(ink, rng, rotate=float(rng.uniform(-15, 15)), gradient=0.3, noise=4, quality=85)
    if variant == "scan: frame edge and dust":
        return photo(ink, rng, frame_edge=True, specks=6, noise=2, quality=90)
    if variant == "photo: small digit, big frame":
        return photo(ink, rng, scale=2, size=(320, 240), gradient=0.3, noise=4, quality=85)
    if variant == "photo: thin pen":
        return photo(ink, rng, pen_erode=5, gradient=0.3, noise=4, quality=85)
    if variant == "phone: all of it":
        tint = [(240, 225, 170), (245, 240, 230)][int(rng.integers(0, 2))]
        return photo(ink, rng, paper=tint, gradient=0.35, shadow=0.35, lines=bool(rng.integers(0, 2)),
                     noise=8, blur=1.0, rotate=float(rng.uniform(-15, 15)), quality=70,
                     frame_edge=bool(rng.integers(0, 2)), specks=3, size=(200, 170))
    raise ValueError(variant)


PHOTOS = ["photo: uneven light", "photo: shadow", "photo: tinted paper, blue pen", "photo: lined paper",
          "photo: noise, blur, JPEG q50", "photo: rotated up to 15°", "photo: thin pen",
          "photo: small digit, big frame", "scan: frame edge and dust", "phone: all of it"]
FASHION = ["plain", "photo: uneven light", "photo: shadow", "phone: all of it"]


def render(kind, variant, ink, rng):
    if variant in DRAWINGS:
        return drawn(ink, rng, variant)
    return photos(ink, rng, variant)


# ---- the server ----


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, models, data, workdir):
    store = os.path.join(workdir, "models")
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(models, store)  # the server writes its journal beside the models
    port = free_port()
    log = open(os.path.join(workdir, "server.log"), "w")
    p = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--models", store,
                          "--data", data], stdout=log, stderr=log)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1)
            return p, port
        except (urllib.error.URLError, ConnectionError):
            if p.poll() is not None:
                sys.exit(f"accuracy: the server exited; see {log.name}")
            time.sleep(0.05)
    p.kill()
    sys.exit("accuracy: the server did not become ready")


def predict(port, model, body, ctype):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/predict?model={model}", data=body,
                                 headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["prediction"]
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read().decode()[:120]}"


def sheet(images, path):
    """Up to 8 misread images side by side, each with 'label→read' below."""
    cells = []
    for body, label, got in images[:8]:
        im = Image.open(io.BytesIO(body)).convert("RGB")
        k = 96 / max(im.size)  # small drawings grown, pixel for pixel, big photos shrunk
        im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))),
                       Image.NEAREST if k > 1 else Image.BILINEAR)
        cell = Image.new("RGB", (100, 114), "white")
        cell.paste(im, ((100 - im.width) // 2, (96 - im.height) // 2))
        ImageDraw.Draw(cell).text((4, 99), f"{label} read as {got}", fill="black")
        cells.append(cell)
    out = Image.new("RGB", (100 * len(cells), 114), "white")
    for i, c in enumerate(cells):
        out.paste(c, (100 * i, 0))
    out.save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--sheets", help="where to write the worst variants' contact sheets")
    ap.add_argument("--only", help="run only the variants whose name contains this")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sets = [("mnist", "digits", "digits", DRAWINGS + PHOTOS),
            ("fashion-mnist", "fashion", "Fashion-MNIST", FASHION)]
    server, port = start_server(os.path.abspath(a.bin), a.models, os.path.abspath(a.data), a.out)
    rows, misses = [], {}
    try:
        for s, (name, model, title, variants) in enumerate(sets):
            x = idx_images(find(a.data, name, "t10k-images-idx3-ubyte"))[:a.n]
            y = idx_labels(find(a.data, name, "t10k-labels-idx1-ubyte"))[:a.n]
            for v, variant in enumerate(variants):
                if a.only and a.only not in variant and variant != "plain":
                    continue
                # one stream per (set, variant): adding a variant changes no other's images
                rng = np.random.Generator(np.random.PCG64([a.seed, s, v]))
                right, t0, wrong = 0, time.time(), []
                for ink, label in zip(x, y):
                    body, ctype = render(name, variant, ink, rng)
                    got = predict(port, model, body, ctype)
                    if got == int(label):
                        right += 1
                    else:
                        wrong.append((body, int(label), got if isinstance(got, int) else "error"))
                acc = 100.0 * right / len(x)
                rows.append((title, variant, acc, len(x)))
                misses[(title, variant)] = wrong
                print(f"accuracy: {title:13s} {variant:32s} {acc:6.2f}%  ({time.time() - t0:.1f} s)",
                      flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    plain = {t: acc for t, v, acc, n in rows if v == "plain"}
    lines = ["| set | variant | kind | accuracy | vs plain | target |", "|---|---|---|---|---|---|"]
    for title, variant, acc, n in rows:
        kind = "drawing" if variant in DRAWINGS else "photo/scan"
        if title != "digits":
            target = "none (frame preprocessing)"
        elif variant == "plain":
            target = "-"
        elif kind == "drawing":
            target = "met" if acc >= plain[title] - 1 else f"missed by {plain[title] - 1 - acc:.1f}"
        else:
            target = "met" if acc >= 95 else f"missed by {95 - acc:.1f}"
        lines.append(f"| {title} | {variant} | {kind} | {acc:.1f}% | {acc - plain[title]:+.1f} | {target} |")
    table = "\n".join(lines)
    print(f"\nmnistd accuracy, first {a.n} test images of each set, seed {a.seed}:\n\n{table}")
    with open(os.path.join(a.out, "accuracy.md"), "w") as f:
        f.write(table + "\n")
    if a.sheets:
        os.makedirs(a.sheets, exist_ok=True)
        # the three worst digit variants, and Fashion-MNIST's worst
        worst = [r for title in ("digits", "Fashion-MNIST")
                 for r in sorted((r for r in rows if r[0] == title and r[1] != "plain"),
                                 key=lambda r: r[2])[:3 if title == "digits" else 1]]
        for title, variant, acc, n in worst:
            slug = "".join(c if c.isalnum() else "-" for c in f"{title}-{variant}".lower()).strip("-")
            while "--" in slug:
                slug = slug.replace("--", "-")
            if misses[(title, variant)]:
                sheet(misses[(title, variant)], os.path.join(a.sheets, slug + ".png"))
                print(f"accuracy: misread {title} / {variant}: {os.path.join(a.sheets, slug + '.png')}")


if __name__ == "__main__":
    main()
