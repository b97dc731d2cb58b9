#!/usr/bin/env python3
"""Writes the hand-made seed corpora of make fuzz into tests/fuzz/corpus/
(png, predict, v2, spec, backprop, content_coding; model's seeds were written once by
model_save). Run once from the repository root; the outputs are committed."""
import base64, gzip, json, os, struct, zlib

OUT = "tests/fuzz/corpus"


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(w, h, color, depth, px, interlace=False, extra=b"", plte=None, trns=None):
    """px(x, y) -> tuple of samples (channels per colour type) at depth bits."""
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]

    def rows(xs, ys):
        raw = b""
        for y in ys:
            bits, nbits, line = 0, 0, bytearray()
            for x in xs:
                for s in px(x, y):
                    if depth == 16:
                        line += struct.pack(">H", s)
                    elif depth == 8:
                        line.append(s)
                    else:
                        bits = bits << depth | s
                        nbits += depth
                        if nbits == 8:
                            line.append(bits)
                            bits, nbits = 0, 0
            if nbits:
                line.append(bits << (8 - nbits))
            raw += b"\0" + bytes(line)
        return raw

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            xs, ys = range(x0, w, dx), range(y0, h, dy)
            if len(xs) and len(ys):
                raw += rows(xs, ys)
    else:
        raw = rows(range(w), range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def ink(x, y, w=28, h=28):
    """A '7'-ish stroke: 1 on the stroke, 0 elsewhere."""
    top = h // 4 <= y <= h // 4 + 2 and w // 4 <= x <= 3 * w // 4
    diag = abs((3 * w // 4 - x) * 2 - (y - h // 4)) <= 2 and y > h // 4
    return 1 if top or diag else 0


def pngs():
    m = 255
    s = {}
    s["gray8.png"] = png(28, 28, 0, 8, lambda x, y: (m * ink(x, y),))
    s["gray8-light.png"] = png(28, 28, 0, 8, lambda x, y: (m - 200 * ink(x, y),))
    s["gray1.png"] = png(28, 28, 0, 1, lambda x, y: (ink(x, y),))
    s["gray2.png"] = png(20, 12, 0, 2, lambda x, y: (3 * ink(x, y, 20, 12),))
    s["gray4.png"] = png(17, 9, 0, 4, lambda x, y: (15 * ink(x, y, 17, 9),))
    s["gray16.png"] = png(28, 28, 0, 16, lambda x, y: (65535 * ink(x, y),))
    s["gray-alpha8.png"] = png(28, 28, 4, 8, lambda x, y: (0, m * ink(x, y)))
    s["gray-alpha16.png"] = png(16, 16, 4, 16, lambda x, y: (65535, 65535 * ink(x, y, 16, 16)))
    s["rgb8.png"] = png(40, 30, 2, 8, lambda x, y: (m, m - 180 * ink(x, y, 40, 30), m))
    s["rgb16.png"] = png(12, 12, 2, 16, lambda x, y: (0, 40000 * ink(x, y, 12, 12), 0))
    s["rgba8.png"] = png(28, 28, 6, 8, lambda x, y: (10, 10, 10, m * ink(x, y)))
    s["rgba16.png"] = png(10, 14, 6, 16, lambda x, y: (0, 0, 0, 65535 * ink(x, y, 10, 14)))
    pal = bytes([255, 255, 255, 0, 0, 0, 200, 30, 30, 0, 0, 255])
    s["palette8.png"] = png(28, 28, 3, 8, lambda x, y: (ink(x, y) + (x + y) % 2 * 2,), plte=pal)
    s["palette4-trns.png"] = png(28, 28, 3, 4, lambda x, y: (ink(x, y),), plte=pal,
                                 trns=bytes([0, 255]))
    s["palette1.png"] = png(9, 9, 3, 1, lambda x, y: (ink(x, y, 9, 9),), plte=pal[:6])
    s["gray-trns.png"] = png(28, 28, 0, 8, lambda x, y: (m * ink(x, y),), trns=b"\x00\x00")
    s["rgb-trns.png"] = png(20, 20, 2, 8, lambda x, y: (m * ink(x, y, 20, 20),) * 3,
                            trns=b"\x00\x00\x00\x00\x00\x00")
    s["interlaced-gray8.png"] = png(28, 28, 0, 8, lambda x, y: (m * ink(x, y),), interlace=True)
    s["interlaced-rgba8.png"] = png(13, 11, 6, 8, lambda x, y: (m, m, m, m * ink(x, y, 13, 11)),
                                    interlace=True)
    s["interlaced-gray16.png"] = png(11, 7, 0, 16, lambda x, y: (65535 * ink(x, y, 11, 7),),
                                     interlace=True)
    s["interlaced-palette2.png"] = png(15, 15, 3, 2, lambda x, y: (ink(x, y, 15, 15) * 3,),
                                       plte=pal, interlace=True)
    s["1x1.png"] = png(1, 1, 0, 8, lambda x, y: (200,))
    s["wide.png"] = png(100, 3, 0, 8, lambda x, y: (m * (x % 7 == 0),))
    s["ancillary.png"] = png(8, 8, 0, 8, lambda x, y: (m * (x == y),),
                             extra=chunk(b"gAMA", struct.pack(">I", 45455)) +
                             chunk(b"tEXt", b"Comment\0seed") +
                             chunk(b"zTXt", b"C\0\0" + zlib.compress(b"x" * 64)))
    return s


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    p = pngs()
    for name, data in p.items():
        write("png", name, data)
    digit = p["gray8.png"]

    # predict: byte 0 = content type (bits 0-1) | preprocess (bits 2-3)
    px = [round(ink(i % 28, i // 28) * 0.9, 2) for i in range(784)]
    write("predict", "json-one", b"\x00" + json.dumps({"pixels": px}).encode())
    write("predict", "json-batch", b"\x04" + json.dumps({"pixels": [px, [0] * 784]}).encode())
    write("predict", "json-bad", b"\x00" + b'{"pixels": [0.5, 2, -1, "x"], "extra": 1}')
    write("predict", "multipart-one", b"\x01" + b"\x00" + digit)
    write("predict", "multipart-batch",
          b"\x09" + b"\x00" + digit + b"\n--\n" + b"\x02" + b"ignored" + b"\n--\n" +
          b"\x11" + p["rgba8.png"] + b"\n--\n" + b"\x05" + p["palette8.png"])
    write("predict", "raw-png", b"\x02" + p["interlaced-gray8.png"])
    write("predict", "raw-png-none", b"\x0e" + digit)
    write("predict", "other-type", b"\x03" + b"hello")

    # v2: '{' = a JSON body; else 2 bytes of header length, header, binary data
    def v2(inputs, **kw):
        return json.dumps(dict(inputs=[inputs], **kw)).encode()
    unit = [v / 1.0 for v in px]
    write("v2", "fp32-flat.json", v2({"name": "input", "shape": [1, 784], "datatype": "FP32",
                                      "data": unit}))
    rows = [[int(v * 255) for v in px[r * 28:(r + 1) * 28]] for r in range(28)]
    write("v2", "uint8-nested.json", v2({"name": "input", "shape": [1, 28, 28], "datatype": "UINT8",
                                         "data": rows}, id="r1",
                                        outputs=[{"name": "probabilities",
                                                  "parameters": {"classification": 3}}]))
    b64 = base64.b64encode(digit).decode()
    write("v2", "bytes-png.json", v2({"name": "input", "shape": [-1], "datatype": "BYTES",
                                      "data": [b64]}, parameters={"binary_data_output": True}))
    write("v2", "fp64-4d.json", v2({"name": "input", "shape": [1, 28, 28, 1], "datatype": "FP64",
                                    "data": unit}))

    def binary(inputs, blob, **kw):
        h = v2(inputs, **kw)
        return struct.pack("<H", len(h)) + h + blob
    write("v2", "bin-fp32", binary({"name": "input", "shape": [1, 784], "datatype": "FP32",
                                    "parameters": {"binary_data_size": 784 * 4}},
                                   struct.pack("<784f", *unit)))
    write("v2", "bin-uint8", binary({"name": "input", "shape": [1, 28, 28], "datatype": "UINT8",
                                     "parameters": {"binary_data_size": 784}},
                                    bytes(int(v * 255) for v in px),
                                    outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}]))
    blob = struct.pack("<I", len(digit)) + digit + struct.pack("<I", len(p["1x1.png"])) + p["1x1.png"]
    write("v2", "bin-bytes", binary({"name": "input", "shape": [2], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": len(blob)}}, blob))

    # spec: the seed networks (copied from specs/) and a few more
    for f in sorted(os.listdir("specs")):
        if f.endswith(".json") and not f.startswith("backprop"):
            with open(os.path.join("specs", f), "rb") as src:
                write("spec", f, src.read())
    write("spec", "grid-early.json", json.dumps({
        "name": "g", "dataset": "fashion-mnist", "input_shape": [28, 28, 1],
        "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": [3, 3], "strides": 2,
                    "padding": "same", "activation": "tanh"},
                   {"type": "MaxPool2D", "pool_size": 2},
                   {"type": "Dropout", "rate": 0.5}, {"type": "Flatten"},
                   {"type": "Dense", "units": 10, "activation": "softmax"}],
        "loss": "sparse_categorical_crossentropy",
        "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        "epochs": 3, "batch_size": 64, "validation_split": 0.1, "shuffle": False,
        "early_stopping": {"monitor": "val_accuracy", "patience": 2, "min_delta": 0.001,
                           "restore_best_weights": True},
        "preprocess": "standardize", "image_preprocess": "frame", "seed": 7,
        "metrics": ["accuracy"],
        "grid": {"learning_rate": [0.1, 0.01], "activation": ["relu", "sigmoid"]}}))
    write("spec", "mse-test.json", json.dumps({
        "name": "m", "layers": [{"type": "dense", "units": 3, "activation": "linear"}],
        "loss": "mse", "validation_data": "test", "image_preprocess": "none"}))

    # backprop: Problem 2 and variants
    with open("specs/backprop-problem2.json", "rb") as src:
        write("backprop", "problem2.json", src.read())
    write("backprop", "softmax-ce.json", json.dumps({
        "input": [0.5, -0.25, 1], "target": [0, 1], "loss": "crossentropy",
        "layers": [{"weights": [[0.1, 0.2, 0.3], [-0.1, 0.4, 0.2]], "biases": [0, 0.1],
                    "activation": "tanh"},
                   {"weights": [[1, -1], [0.5, 0.5]], "biases": [0.2, -0.2],
                    "activation": "softmax"}]}))
    write("backprop", "linear-mse.json", json.dumps({
        "input": [2], "target": [1], "loss": "mse",
        "layers": [{"weights": [[0.5]], "biases": [0], "activation": "linear"}]}))


    # content_coding: first byte bit 0 deflate (else gzip), bit 1 also an Accept-Encoding
    body = v2({"name": "input", "shape": [1, 784], "datatype": "FP32", "data": unit[:16]})
    write("content_coding", "gzip", b"\x00" + gzip.compress(body, mtime=0))
    write("content_coding", "deflate-zlib", b"\x01" + zlib.compress(body))
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    write("content_coding", "deflate-raw", b"\x01" + raw.compress(body) + raw.flush())
    write("content_coding", "bomb", b"\x00" + gzip.compress(b"\0" * (1 << 20), mtime=0))
    write("content_coding", "accept", b"\x02gzip;q=0.5, deflate;q=0.8, br, *;q=0")


main()
