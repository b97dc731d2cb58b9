"""Triton's own HTTP client (tritonclient.http) against mnistd over HTTPS.
   triton_https.py HOST:PORT MODEL CA_CERT
ssl=True, the chain verified against the test's self-signed certificate
(ssl_options ca_certs) and the host name against its subjectAltName.
Exits non-zero on any miss."""
import sys

import numpy as np
import tritonclient.http as httpclient

url, model, ca = sys.argv[1:4]
client = httpclient.InferenceServerClient(url, ssl=True, ssl_options={"ca_certs": ca})
assert client.is_server_live(), "not live"
assert client.is_model_ready(model), "model not ready"
meta = client.get_model_metadata(model)
shape = [1] + [d for d in meta["inputs"][0]["shape"][1:]]
x = np.zeros(shape, dtype=np.float32)
for binary in (False, True):
    inp = httpclient.InferInput(meta["inputs"][0]["name"], x.shape, "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput(meta["outputs"][0]["name"], binary_data=binary)
    p = client.infer(model, [inp], outputs=[out]).as_numpy(meta["outputs"][0]["name"])
    assert p.shape == (1, 10), p.shape
    assert abs(float(p.sum()) - 1.0) < 1e-4, p
print("triton over https: live, ready, infer (JSON and binary) ok")
