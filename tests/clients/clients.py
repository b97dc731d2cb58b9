"""The protocols' own clients against a real mnistd (make clients, part of make test):
Triton's tritonclient.http, unchanged, from ../shared/clients (PYTHONPATH);
the body KServe's InferRequest.to_rest() sends (kserve/protocol/infer_type.py),
posted as InferenceRESTClient posts it; TorchServe's documented curl calls;
TF Serving's REST calls. Every check prints a line; any failure exits 1.
    python3 tests/clients/clients.py MNISTD_BIN MODELS_DIR DATA_DIR
"""
import base64
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
import zlib

import numpy as np
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

bin_path, models_dir, data_dir = sys.argv[1:4]
failed = 0
passed = 0


def check(what, ok, detail=""):
    global failed, passed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}: {detail}")


def refused(what, call, status, needle):
    """call() must raise Triton's exception with this status and message."""
    try:
        call()
    except InferenceServerException as e:
        check(what, e.status() == str(status) and needle in e.message(),
              f"status {e.status()} message {e.message()!r}")
        return
    check(what, False, "no error raised")


def mnist_test_images(n):
    """The first n MNIST test digits as uint8 [n,28,28] and their labels."""
    with open(os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte"), "rb") as f:
        f.read(16)
        images = np.frombuffer(f.read(n * 784), dtype=np.uint8).reshape(n, 28, 28)
    with open(os.path.join(data_dir, "mnist", "t10k-labels-idx1-ubyte"), "rb") as f:
        f.read(8)
        labels = np.frombuffer(f.read(n), dtype=np.uint8)
    return images, labels


def png_of(img):
    """A gray 8-bit PNG of a 2-D uint8 array (zlib and the PNG chunk layout)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


store = tempfile.mkdtemp(prefix="mnistd-clients-")
shutil.copytree(models_dir, store, dirs_exist_ok=True)
server = subprocess.Popen([bin_path, "serve", "--port", "0", "--models", store, "--data", data_dir,
                           "--max-body", "65536"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
log = ""
while True:
    line = server.stderr.readline()
    if not line:
        sys.exit(f"server exited: {log}")
    log += line
    m = re.search(r'"url":"http://([^"]+)/"', line)
    if m:
        hostport = m.group(1)
        break
base = "http://" + hostport
images, labels = mnist_test_images(8)
model = "mnist-cnn"

try:
    c = triton.InferenceServerClient(hostport)
    # health, metadata, the extensions tritonclient calls
    check("is_server_live", c.is_server_live())
    check("is_server_ready", c.is_server_ready())
    check("is_model_ready", c.is_model_ready(model) and c.is_model_ready(model, "1"))
    meta = c.get_server_metadata()
    check("get_server_metadata", meta["name"] == "mnistd" and "classification" in meta["extensions"])
    md = c.get_model_metadata(model, "1")
    check("get_model_metadata", md["inputs"][0]["name"] == "input" and
          md["outputs"][0]["name"] == "probabilities", md)
    cfg = c.get_model_config(model)
    check("get_model_config", cfg["name"] == model and cfg["max_batch_size"] > 0 and
          cfg["input"][0]["dims"] == [28, 28, 1] and cfg["output"][0]["dims"] == [10], cfg)
    check("get_model_config version", c.get_model_config(model, "1")["name"] == model)
    # What Triton's image_client.py asks of a model before it sends an image
    # (its parse_model): one input and one output, FP32 out, a vector out,
    # an input of three dims past the batch one, laid out NHWC or NCHW.
    # (The script itself imports tritonclient.grpc, which is not here.)
    out_shape = md["outputs"][0]["shape"][1 if cfg["max_batch_size"] > 0 else 0:]
    check("image_client.py's parse_model",
          len(md["inputs"]) == 1 and len(md["outputs"]) == 1 and len(cfg["input"]) == 1 and
          md["outputs"][0]["datatype"] == "FP32" and sum(d > 1 for d in out_shape) == 1 and
          len(md["inputs"][0]["shape"]) == 3 + (cfg["max_batch_size"] > 0) and
          cfg["input"][0]["format"] in ("FORMAT_NHWC", "FORMAT_NCHW"), (md, cfg))
    index = c.get_model_repository_index()
    check("get_model_repository_index",
          {(m["name"], m["version"], m["state"]) for m in index} >=
          {(model, "1", "READY"), ("fashion-cnn", "1", "READY")}, index)
    before = c.get_inference_statistics(model, "1")["model_stats"][0]

    # infer: FP32 and UINT8, binary and JSON both ways, a batch, gzip and deflate
    x = (images.astype(np.float32) / 255.0).reshape(8, 28, 28, 1)
    probs = {}
    for binary_in in (True, False):
        for binary_out in (True, False):
            inp = triton.InferInput("input", list(x.shape), "FP32")
            inp.set_data_from_numpy(x, binary_data=binary_in)
            out = triton.InferRequestedOutput("probabilities", binary_data=binary_out)
            r = c.infer(model, [inp], outputs=[out], request_id="t1")
            p = r.as_numpy("probabilities")
            probs[(binary_in, binary_out)] = p
            check(f"infer FP32 binary in {binary_in} out {binary_out}",
                  p.shape == (8, 10) and (p.argmax(1) == labels).all() and
                  r.get_response()["id"] == "t1", p)
    ref = probs[(False, False)]
    check("binary and JSON outputs agree",
          all(np.array_equal(p, ref) for p in probs.values()))
    inp = triton.InferInput("input", [8, 28, 28], "UINT8")
    inp.set_data_from_numpy(images)
    r = c.infer(model, [inp])  # no outputs asked: binary_data_output
    check("infer UINT8 binary", np.allclose(r.as_numpy("probabilities"), ref, atol=1e-6))
    for algo in ("gzip", "deflate"):
        inp = triton.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=False)
        r = c.infer(model, [inp], request_compression_algorithm=algo,
                    response_compression_algorithm=algo)
        check(f"infer {algo} both ways", np.array_equal(r.as_numpy("probabilities"), ref))
    # BYTES: PNG files, binary
    pngs = np.array([png_of(images[i]) for i in range(3)], dtype=np.object_)
    inp = triton.InferInput("input", [3], "BYTES")
    inp.set_data_from_numpy(pngs)
    r = c.infer(model, [inp], outputs=[triton.InferRequestedOutput("probabilities")])
    check("infer BYTES PNG", (r.as_numpy("probabilities").argmax(1) == labels[:3]).all())
    # the classification extension, binary and JSON
    for binary_out in (True, False):
        inp = triton.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        out = triton.InferRequestedOutput("probabilities", binary_data=binary_out, class_count=2)
        cls = c.infer(model, [inp], outputs=[out]).as_numpy("probabilities")
        text = [s.decode() if isinstance(s, bytes) else s for s in cls[:, 0]]
        top = [int(t.split(":")[1]) for t in text]  # "score:index:label"
        check(f"classification binary {binary_out}", cls.shape == (8, 2) and top == list(labels), cls)

    after = c.get_inference_statistics(model, "1")["model_stats"][0]
    done = after["inference_stats"]["success"]["count"] - before["inference_stats"]["success"]["count"]
    check("get_inference_statistics counts", done == 10 and
          after["inference_count"] - before["inference_count"] == 8 * 9 + 3 and
          after["last_inference"] > 0, after)
    # batch_stats: the 10 executions were 9 batches of 8 and one of 3
    def per_size(stats):
        return {b["batch_size"]: b["compute_infer"]["count"] for b in stats["batch_stats"]}
    grew = {k: v - per_size(before).get(k, 0) for k, v in per_size(after).items()}
    check("get_inference_statistics batch_stats", {k: v for k, v in grew.items() if v} == {8: 9, 3: 1}
          and all(b["compute_infer"]["ns"] > 0 and b["compute_input"]["count"] == b["compute_infer"]["count"]
                  for b in after["batch_stats"]), after["batch_stats"])
    allstats = c.get_inference_statistics()["model_stats"]
    check("get_inference_statistics all", {(s["name"], s["version"]) for s in allstats} >=
          {(model, "1"), ("fashion-cnn", "1")})

    # refusals in the /v2 shape, as tritonclient raises them
    inp = triton.InferInput("pixels", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    refused("unknown input name", lambda: c.infer(model, [inp]), 400, 'unknown input "pixels"')
    inp = triton.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    refused("unknown output name",
            lambda: c.infer(model, [inp], outputs=[triton.InferRequestedOutput("logits")]),
            400, 'unknown output "logits"')
    refused("unknown model config", lambda: c.get_model_config("nosuch"), 404, "nosuch")
    refused("unknown model stats", lambda: c.get_inference_statistics("nosuch"), 404, "nosuch")
    refused("unknown route", lambda: c.load_model(model), 404, "no route")
    refused("sequence parameters", lambda: c.infer(model, [inp], sequence_id=7), 400, "sequence_id")
    stats = c.get_inference_statistics(model, "1")["model_stats"][0]["inference_stats"]
    # the header's refusals come before a model is chosen; the input's name after
    check("failures counted", stats["fail"]["count"] == 1, stats)
    big = np.zeros((64, 28, 28, 1), dtype=np.float32)  # 200 kB of JSON+binary > --max-body 65536
    inp = triton.InferInput("input", list(big.shape), "FP32")
    inp.set_data_from_numpy(big)
    refused("gzip that inflates past --max-body",
            lambda: c.infer(model, [inp], request_compression_algorithm="gzip"), 413, "--max-body")
    c.close()

    # KServe: exactly InferRequest.to_rest()'s dict, posted as InferenceRESTClient does
    rest = {"id": str(uuid.uuid4()), "model_name": model,
            "inputs": [{"name": "input", "shape": [2, 784], "datatype": "FP32",
                        "data": (images[:2].reshape(-1) / 255.0).tolist()}],
            "outputs": [{"name": "probabilities"}],
            "parameters": {"binary_data_output": False}}
    url = f"{base}/v2/models/{model}/infer"
    s, body, _ = http("POST", url, json.dumps(rest).encode(), {"content-type": "application/json"})
    ans = json.loads(body)
    check("kserve to_rest infer", s == 200 and ans["id"] == rest["id"] and
          ans["model_name"] == model and
          np.argmax(np.array(ans["outputs"][0]["data"]).reshape(2, 10), 1).tolist() ==
          labels[:2].tolist(), body[:300])
    # with a model_version (older kserve versions send it) and its binary form
    raw = (images[:1].astype(np.float32) / 255.0).tobytes()
    head = json.dumps({"id": "k2", "model_name": model, "model_version": "1",
                       "inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    s, body, _ = http("POST", url, head + raw, {"inference-header-content-length": str(len(head)),
                                                "content-type": "application/octet-stream"})
    check("kserve to_rest binary with model_version", s == 200 and
          json.loads(body)["model_version"] == "1", body[:200])
    for bad, needle in ((dict(rest, model_name="other"), 'model_name "other"'),
                        (dict(rest, model_version="9"), "has no version 9"),
                        (dict(rest, priority=1), 'unknown key "priority"')):
        s, body, _ = http("POST", url, json.dumps(bad).encode(), {"content-type": "application/json"})
        err = json.loads(body).get("error")
        check(f"kserve refuses {needle}", s in (400, 404) and isinstance(err, str) and needle in err,
              f"{s} {body[:200]}")

    # TorchServe: curl -T (PUT, no Content-Type), --data-binary, a version in the path
    png = png_of(images[0])
    for args in (["-T", "-"], ["--data-binary", "@-"]):
        for path in (f"/predictions/{model}", f"/predictions/{model}/1"):
            out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", base + path] + args,
                                 input=png, capture_output=True).stdout.decode()
            text, code = out.rsplit("\n", 1)
            check(f"torchserve curl {args[0]} {path}", code == "200" and
                  json.loads(text)["prediction"] == labels[0], out[:200])
    with tempfile.NamedTemporaryFile(suffix=".png") as f:  # curl -F data=@digit.png
        f.write(png)
        f.flush()
        out = subprocess.run(["curl", "-s", "-F", f"data=@{f.name}", f"{base}/predictions/{model}"],
                             capture_output=True).stdout
        check("torchserve curl -F data=@", json.loads(out)["prediction"] == labels[0], out[:200])
    s, body, _ = http("PUT", f"{base}/predictions/{model}", b"not an image")
    check("torchserve refuses what is no image", s == 415 and b"first bytes" in body, body)

    # TF Serving: status, metadata, row and columnar predict, versioned, its error shape
    s, body, _ = http("GET", f"{base}/v1/models/{model}")
    check("tf status", s == 200 and json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE", body)
    s, body, _ = http("GET", f"{base}/v1/models/{model}/versions/1")
    check("tf version status", s == 200 and json.loads(body)["model_version_status"][0]["version"] == "1")
    s, body, _ = http("GET", f"{base}/v1/models/{model}/metadata")
    sig = json.loads(body)["metadata"]["signature_def"]["signature_def"]["serving_default"]
    check("tf metadata", s == 200 and "input" in sig["inputs"] and "probabilities" in sig["outputs"], body[:300])
    rows = (images[:2] / 255.0).tolist()
    jh = {"Content-Type": "application/json"}
    s, body, _ = http("POST", f"{base}/v1/models/{model}/versions/1:predict",
                      json.dumps({"signature_name": "serving_default", "instances": rows}).encode(), jh)
    check("tf row predict versioned", s == 200 and
          np.argmax(json.loads(body)["predictions"], 1).tolist() == labels[:2].tolist(), body[:200])
    s, body, _ = http("POST", f"{base}/v1/models/{model}:predict",
                      json.dumps({"inputs": {"input": rows}}).encode(), jh)
    check("tf columnar predict", s == 200 and
          np.argmax(json.loads(body)["outputs"], 1).tolist() == labels[:2].tolist(), body[:200])
    b64 = base64.b64encode(png).decode()
    s, body, _ = http("POST", f"{base}/v1/models/{model}:predict",
                      json.dumps({"instances": [{"b64": b64}]}).encode(), jh)
    check("tf b64 predict", s == 200 and np.argmax(json.loads(body)["predictions"][0]) == labels[0])
    for method, path, want in (("GET", "/v1/models/nosuch", 404), ("DELETE", f"/v1/models/{model}", 405),
                               ("POST", f"/v1/models/{model}:classify", 404)):
        s, body, _ = http(method, base + path, b"{}" if method == "POST" else None, jh)
        check(f"tf error shape {method} {path}", s == want and isinstance(json.loads(body)["error"], str),
              f"{s} {body}")
    # every /v2 status in the /v2 shape, 405 included
    s, body, _ = http("DELETE", f"{base}/v2/models/{model}")
    check("v2 405 shape", s == 405 and isinstance(json.loads(body)["error"], str), body)
    # Accept-Encoding on a plain GET
    s, body, hdr = http("GET", f"{base}/v2/models/{model}/config", None, {"Accept-Encoding": "gzip"})
    check("Accept-Encoding gzip", s == 200 and hdr["Content-Encoding"] == "gzip" and
          json.loads(gzip.decompress(body))["name"] == model)
finally:
    server.terminate()
    server.wait(timeout=15)
    shutil.rmtree(store, ignore_errors=True)

print(f"clients: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
