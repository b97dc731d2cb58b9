#!/usr/bin/env python3
"""The PyTorch peer of `make bench`: the same networks as bench/specs/, trained
and timed the way bench_core.c times mnistd, one JSON line at the end.

  python3 bench/torch_peer.py --net mlp64 [--epochs N] [--threads 2] [--data data]

Keras's setup: Glorot uniform weights, zero biases, softmax + cross-entropy
(CrossEntropyLoss on logits), a new shuffle every epoch, plain tensor
indexing (no DataLoader). Seconds per epoch: the median of the epochs after
the first. OpenBLAS (which this Debian torch sends its GEMMs to) is held to
one thread: beside torch's own threads a second pool made training 3-4x
slower and erratic on 2 cores.
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
from threadpoolctl import threadpool_info, threadpool_limits


def mlp(sizes, act):
    layers = [nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def cnn_basic():
    # Keras padding="same" with stride 2 pads bottom/right; torch pads both
    # sides: padding=1 gives the same shapes, the taps sit one pixel apart.
    r = nn.ReLU
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding="same"), r(), nn.Conv2d(32, 16, 1), r(),
        nn.Conv2d(16, 64, 3, stride=2, padding=1), r(), nn.Conv2d(64, 16, 1), r(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), r(), nn.Conv2d(32, 16, 1), r(),
        nn.Flatten(), nn.Linear(7 * 7 * 16, 10))


def cnn_tutorial():
    # Keras "same" for an even kernel pads only bottom/right: pad explicitly.
    return nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(1, 64, 2), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(14 * 14 * 64, 10))


def cnn_bn():
    # The shipped models' network (specs/digits.json, specs/fashion.json)
    # without their augmentation: 3x3 conv without bias + batch norm + relu,
    # five times, two max-pools, global average pooling. Keras's batch norm:
    # epsilon 1e-3, moving averages kept at 0.99 (torch's momentum 0.01).
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding="same", bias=False),
                nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU()]
    return nn.Sequential(*block(1, 16), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
                         *block(64, 64), nn.MaxPool2d(2), *block(64, 64),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


# name -> (builder, optimizer, learning rate, batch, conv input)
NETS = {
    "mlp64": (lambda: mlp([784, 64, 10], nn.ReLU), "adam", 1e-3, 32, False),
    "mlp50-50": (lambda: mlp([784, 50, 50, 10], nn.ReLU), "adam", 1e-3, 32, False),
    "mlp20-40-20": (lambda: mlp([784, 20, 40, 20, 10], nn.ReLU), "adam", 1e-3, 128, False),
    "mlp16-sigmoid": (lambda: mlp([784, 16, 10], nn.Sigmoid), "sgd", 0.1, 32, False),
    "cnn-basic": (cnn_basic, "adam", 1e-3, 32, True),
    "cnn-basic-b128": (cnn_basic, "adam", 1e-3, 128, True),
    "cnn-tutorial": (cnn_tutorial, "adam", 1e-3, 32, True),
    "cnn-bn": (cnn_bn, "adam", 1e-3, 128, True),
}


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    d = os.path.join(data_dir, "fashion-mnist")
    return [idx(os.path.join(d, f)) for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]


def keras_init(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:  # use_bias false: no bias
            nn.init.zeros_(m.bias)


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return acc


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--net", required=True, choices=NETS)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--data", default="data")
    p.add_argument("--save", help="save the state_dict here (the serving peer loads it)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    build, opt_name, lr, batch, conv = NETS[a.net]
    torch.set_num_threads(a.threads)
    threadpool_limits(limits=1, user_api="blas")
    cores = sorted({i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"})
    torch.manual_seed(a.seed)

    xtr, ytr, xte, yte = load(a.data)
    shape = (-1, 1, 28, 28) if conv else (-1, 784)
    xtr = torch.from_numpy(xtr.astype(np.float32) / 255.0).reshape(shape)
    xte = torch.from_numpy(xte.astype(np.float32) / 255.0).reshape(shape)
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))

    model = build()
    model.apply(keras_init)
    params = sum(t.numel() for t in model.parameters())
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if opt_name == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr))
    lossf = nn.CrossEntropyLoss()
    n = xtr.shape[0]
    times = []
    for ep in range(a.epochs):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            sel = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xtr[sel]), ytr[sel])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
        print(f"epoch {ep + 1}: {times[-1]:.3f} s  loss {loss.item():.4f}", flush=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    acc = accuracy(model, xte, yte)
    if a.save:
        torch.save(model.state_dict(), a.save)

    model.eval()
    with torch.no_grad():
        for i in range(50):
            model(xte[i:i + 1])
        lat = []
        for i in range(1000):
            t0 = time.perf_counter()
            model(xte[i:i + 1])
            lat.append((time.perf_counter() - t0) * 1e6)
        whole = []
        for _ in range(3):
            t0 = time.perf_counter()
            model(xte)
            whole.append(time.perf_counter() - t0)
    lat.sort()
    per_epoch = statistics.median(times[1:] or times)
    print(json.dumps({
        "tool": "pytorch", "torch": torch.__version__, "net": a.net, "params": params,
        "batch": batch, "threads": a.threads, "openblas_core": ",".join(c or "?" for c in cores),
        "epochs_run": len(times), "first_epoch_s": round(times[0], 3),
        "sec_per_epoch": round(per_epoch, 4), "test_accuracy": round(acc, 4),
        "peak_rss_train_kb": peak_kb,
        "infer_b1_median_us": round(lat[len(lat) // 2], 1), "infer_b1_p99_us": round(lat[989], 1),
        "infer_samples_per_s": round(xte.shape[0] / min(whole)),
    }))


if __name__ == "__main__":
    main()
