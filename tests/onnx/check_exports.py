#!/usr/bin/env python3
"""onnx.checker (Debian python3-onnx, full_check: shape inference too) on every model
test_onnx.c exported, and mnistd's metadata_props present in each.

  /usr/bin/python3 tests/onnx/check_exports.py DIR
"""
import glob
import json
import os
import sys

import onnx

files = sorted(glob.glob(os.path.join(sys.argv[1], "export", "*.onnx")))
bad = 0
for f in files:
    try:
        m = onnx.load(f)
        onnx.checker.check_model(m, full_check=True)
        meta = {p.key: p.value for p in m.metadata_props}
        classes = json.loads(meta["mnistd.class_names"])
        out = m.graph.output[0].type.tensor_type.shape.dim[1].dim_value
        assert len(classes) == out, f"{len(classes)} class names for {out} outputs"
        assert meta["mnistd.image_preprocess"] in ("digit", "frame", "none")
        opset = m.opset_import[0].version
        assert opset >= 13, f"opset {opset}"
        print(f"onnx.checker: {os.path.basename(f)}: ok (opset {opset}, {len(m.graph.node)} nodes, "
              f"classes {classes[:3]}..., preprocess {meta['mnistd.image_preprocess']})")
    except Exception as e:  # noqa: BLE001 (any failure is a failed check)
        print(f"onnx.checker: {os.path.basename(f)}: FAILED: {e}")
        bad += 1
if len(files) < 10:
    print(f"onnx.checker: only {len(files)} exports")
    bad += 1
sys.exit(1 if bad else 0)
