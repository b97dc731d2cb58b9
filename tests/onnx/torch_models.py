#!/usr/bin/env python3
"""Networks built and briefly trained in PyTorch, exported with torch.onnx.export (opset 13),
and their probabilities on the first 1,000 MNIST test images: what test_onnx.c imports into
mnistd and compares with (within 1e-5).

  /usr/bin/python3 tests/onnx/torch_models.py DATA_DIR OUT_DIR

Writes OUT_DIR/images.f32 (1000 x 784 float32, pixels / 255, mnistd's input) and, per
network, OUT_DIR/torch/NAME.onnx and NAME.probs (1000 x 10 float32). Each network is trained
on 1,000 training images for one epoch (seeded): enough that its weights are not an
initialiser's, quick enough for make test. Each export is checked to contain the operators
the network is there to exercise (a BatchNormalization that torch did not fold away, the Add
of a residual block, the Concat of two branches...), so the test cannot pass vacuously.
"""
import os
import sys

import numpy as np
import torch
from torch import nn

TRAIN, TEST = 1000, 1000


def idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mlp(sizes, act, softmax=True):
    layers = [nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers, nn.Softmax(dim=1))


def cnn_basic():
    # The seed's MNISTBasicCNN; PyTorch pads stride-2 convolutions on both sides
    # (padding=1), which Keras's "same" does not: explicit pads in mnistd.
    r = nn.ReLU
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), r(), nn.Conv2d(32, 16, 1), r(),
        nn.Conv2d(16, 64, 3, stride=2, padding=1), r(), nn.Conv2d(64, 16, 1), r(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), r(), nn.Conv2d(32, 16, 1), r(),
        nn.Flatten(), nn.Linear(7 * 7 * 16, 10), nn.Softmax(dim=1))


def cnn_tutorial():
    # The tutorial's Conv 64 k2 "same", MaxPool 2, Dense 10. Keras's "same" puts the
    # kernel's odd pixel of padding at the bottom and right: a ZeroPad2d in PyTorch,
    # which torch 1.13 exports as a Pad whose pads are computed from constants
    # (ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast). The Flatten of 64
    # channels orders the features C,H,W.
    return nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(1, 64, 2), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(14 * 14 * 64, 10),
                         nn.Softmax(dim=1))


def mlp_gelu_leaky():
    # nn.GELU exports as its erf arithmetic (Div, Erf, Add, Mul, Mul); LeakyReLU(0.1) is
    # not mnistd's leaky_relu activation (0.2): a leaky_relu layer.
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.GELU(), nn.Linear(32, 24),
                         nn.LeakyReLU(0.1), nn.Linear(24, 10), nn.Softmax(dim=1))


def cnn_pad_elu():
    # ELU(0.5) (an elu layer); a lopsided ZeroPad2d before a stride-2 Conv, and one
    # before a MaxPool after a ReLU (where a zero never wins the max over mnistd's
    # padding, so it folds into the pool).
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ELU(0.5), nn.ZeroPad2d((1, 2, 0, 1)), nn.Conv2d(8, 8, 3, stride=2),
        nn.ReLU(), nn.ZeroPad2d(1), nn.MaxPool2d(3, 2), nn.Flatten(), nn.Linear(8 * 7 * 7, 10),
        nn.Softmax(dim=1))


class BatchNormNet(nn.Module):
    """BatchNorm where torch's exporter cannot fold it into a convolution: after a
    ReLU, and a BatchNorm1d after a Linear; average pooling between."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8),
            nn.AvgPool2d(2, count_include_pad=False),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(16),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 3 * 3, 32), nn.BatchNorm1d(32),
            nn.Tanh(), nn.Dropout(0.2), nn.Linear(32, 10), nn.Softmax(dim=1))

    def forward(self, x):
        return self.body(x)


class ResidualNet(nn.Module):
    """A residual block (Add), two branches joined by Concat, global average pooling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 12, 3, padding=1)
        self.a = nn.Conv2d(12, 12, 3, padding=1)
        self.b = nn.Conv2d(12, 12, 3, padding=1)
        self.left = nn.Conv2d(12, 8, 1)
        self.right = nn.Conv2d(12, 8, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(x + self.b(torch.relu(self.a(x))))
        y = torch.cat([self.pool(self.left(x)), torch.relu(self.right(x))], dim=1)
        y = nn.functional.leaky_relu(y, 0.2)
        y = torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1)
        return torch.softmax(self.head(y), dim=1)


# name: (network, input shape of one image, operators its export must contain)
NETS = {
    "mnist-mlp64": (lambda: mlp([784, 64, 10], nn.ReLU), (784,), {"Gemm", "Relu", "Softmax"}),
    "mnist-sigmoid16": (lambda: mlp([784, 16, 10], nn.Sigmoid), (784,), {"Gemm", "Sigmoid"}),
    "fashion-homework-relu": (lambda: mlp([784, 20, 40, 20, 10], nn.ReLU), (784,), {"Gemm"}),
    "mlp-elu": (lambda: mlp([784, 24, 10], nn.ELU), (1, 28, 28), {"Flatten", "Elu"}),
    "mnist-cnn": (cnn_basic, (1, 28, 28), {"Conv", "Flatten", "Gemm"}),
    "fashion-cnn": (cnn_tutorial, (1, 28, 28), {"Pad", "Conv", "MaxPool", "Gemm"}),
    "mlp-gelu-leaky": (mlp_gelu_leaky, (784,), {"Erf", "LeakyRelu"}),
    "cnn-pad-elu": (cnn_pad_elu, (1, 28, 28), {"Pad", "Elu", "MaxPool"}),
    "batchnorm": (BatchNormNet, (1, 28, 28), {"BatchNormalization", "AveragePool", "Tanh"}),
    "residual": (ResidualNet, (1, 28, 28), {"Add", "Concat", "GlobalAveragePool", "LeakyRelu"}),
}


def train(net, x, y):
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    net.train()
    for i in range(0, len(x), 25):
        opt.zero_grad()
        p = net(x[i:i + 25])
        loss = nn.functional.nll_loss(torch.log(p + 1e-9), y[i:i + 25])
        loss.backward()
        opt.step()
    net.eval()


def main():
    data, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    torch.set_num_threads(2)
    mnist = os.path.join(data, "mnist")
    xtr = idx(os.path.join(mnist, "train-images-idx3-ubyte"))[:TRAIN].astype(np.float32) / 255
    ytr = idx(os.path.join(mnist, "train-labels-idx1-ubyte"))[:TRAIN].astype(np.int64)
    xte = idx(os.path.join(mnist, "t10k-images-idx3-ubyte"))[:TEST].astype(np.float32) / 255
    os.makedirs(os.path.join(out, "torch"), exist_ok=True)
    xte.reshape(TEST, 784).tofile(os.path.join(out, "images.f32"))
    import onnx  # noqa: E402 (only to list the exported operators)
    for name, (build, shape, must) in NETS.items():
        net = build()
        train(net, torch.from_numpy(xtr).reshape(TRAIN, *shape), torch.from_numpy(ytr))
        x = torch.from_numpy(xte).reshape(TEST, *shape)
        with torch.no_grad():
            probs = net(x).numpy().astype(np.float32)
        path = os.path.join(out, "torch", name + ".onnx")
        torch.onnx.export(net, x[:1], path, input_names=["input"], output_names=["probabilities"],
                          dynamic_axes={"input": {0: "n"}, "probabilities": {0: "n"}},
                          opset_version=13)
        ops = {n.op_type for n in onnx.load(path).graph.node}
        if not must <= ops:
            sys.exit(f"{name}: the export lacks {sorted(must - ops)} (it has {sorted(ops)})")
        probs.tofile(os.path.join(out, "torch", name + ".probs"))
        acc = float((probs.argmax(1) == idx(os.path.join(mnist, "t10k-labels-idx1-ubyte"))[:TEST]).mean())
        print(f"torch: {name}: {sorted(ops)}, test accuracy on {TEST}: {acc:.3f}")


if __name__ == "__main__":
    main()
