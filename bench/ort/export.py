#!/usr/bin/env python3
"""The networks of bench/torch_peer.py as ONNX files, for ONNX Runtime (ort_peer.mjs).

  /usr/bin/python3 bench/ort/export.py OUT_DIR NET...

Weights are the peer's initial ones (torch.manual_seed(0)): inference speed
does not depend on them. Each network ends in a softmax, as mnistd's do
(Keras's Dense(10, activation="softmax")): both engines answer the 10
probabilities, where the peer's training network stops at the logits for
its cross-entropy loss. The batch axis is dynamic, so one file serves
batch-1 calls and the 10,000-image batch. Debian's torch 1.13 cannot export
padding="same", so such convolutions get the same taps spelt out. Also
writes identity.onnx (input straight to output, one Identity node): timed
like the networks, it is the node binding's own cost per call.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch_peer  # noqa: E402  (bench/, beside this folder)


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


def export(net, flat, path):
    x = torch.rand(1, 784) if flat else torch.rand(1, 1, 28, 28)
    torch.onnx.export(net, x, path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "n"}, "output": {0: "n"}}, opset_version=13)


def main():
    out, names = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name in names:
        build, _opt, _lr, _batch, conv = torch_peer.NETS[name]
        net = build().eval()
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d) and m.padding == "same":
                m.padding = tuple(k // 2 for k in m.kernel_size)
        export(torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval(), not conv,
               os.path.join(out, name + ".onnx"))
    export(Identity(), True, os.path.join(out, "identity.onnx"))


if __name__ == "__main__":
    main()
