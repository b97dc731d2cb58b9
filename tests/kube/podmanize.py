"""The objects of deploy/k8s as podman 4.3's `kube play` can run them.

   podmanize.py K8S_DIR OUT_DIR TOKEN TLS_CERT TLS_KEY

podman runs Pods, Deployments, ConfigMaps, Secrets and PersistentVolumeClaims
from Kubernetes YAML, with the gaps this fills, and nothing else changed:
  - a Deployment gets one pod, whatever its replicas ("Limiting replica
    count to 1"): each replica is written as a Deployment of its own,
    mnistd-r0, mnistd-r1, ..., the same template, the same claim, and a
    free loopback hostPort (podman would publish 8080 on the host for each);
  - a Job is not run at all: its pod template becomes a Pod (restartPolicy
    Never), with the Job's ConfigMap beside it;
  - the Secrets deploy/k8s expects to exist (kubectl create secret ...)
    are written: mnistd-token with TOKEN, and the TLS Secret mnistd-tls
    with the PEM files given, as podman 4.3 refuses a secret volume that is
    `optional` and absent ("no secret with name or id");
  - as many replicas again, mnistd-tls-r0, ..., are the Deployment with
    HTTPS switched on (`serve --tls-cert --tls-key`, probes HTTPS), their
    certificate and key in a ConfigMap, mnistd-tls-test (tls-configmap.yaml, for `podman
    kube play --configmap`) mounted where the Secret would be: podman 4.3
    creates a secret volume's directory but puts no file of the Secret in
    it, while it does mount a ConfigMap's keys as files. A test-only
    overlay: deploy/k8s keeps the Secret, as a real cluster wants.
The HorizontalPodAutoscaler and the Service have no podman equivalent and
are left out (the test talks to each replica's pod address).
Writes store.yaml, secret-NAME.json, serve-rN.yaml, tls-configmap.yaml,
serve-tls-rN.yaml, train.yaml; prints the replica count."""
import base64
import copy
import json
import os
import socket
import sys

import yaml

k8s, out, token, cert, key = sys.argv[1:6]


def load(name):
    with open(os.path.join(k8s, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def write(name, docs):
    with open(os.path.join(out, name), "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)


def write_json(name, docs):
    with open(os.path.join(out, name), "w") as f:
        f.write("\n---\n".join(json.dumps(d) for d in docs) + "\n")


os.makedirs(out, exist_ok=True)
write("store.yaml", load("store.yaml"))


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


# For `podman secret create NAME FILE`, each in the form podman 4.3 reads it
# back in: it stores a Secret it plays as YAML text, which a secretKeyRef
# then fails to read ("secret mnistd-token is not valid JSON": env wants a
# JSON map of key to base64 bytes), while a secret volume wants the whole
# Secret object.
write_json("secret-mnistd-token.json", [{"token": base64.b64encode(token.encode()).decode()}])
write_json("secret-mnistd-tls.json", [{"apiVersion": "v1", "kind": "Secret",
                                       "type": "kubernetes.io/tls",
                                       "metadata": {"name": "mnistd-tls"},
                                       "data": {"tls.crt": b64(cert), "tls.key": b64(key)}}])
(deployment,) = load("deployment.yaml")
replicas = deployment["spec"]["replicas"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica(name):
    """The Deployment as one replica. podman publishes a containerPort on
    the host's same port when no hostPort is given (Kubernetes publishes
    none), so a second replica could not bind 8080: each gets a free
    loopback port instead; the test talks to the pods' own addresses."""
    d = copy.deepcopy(deployment)
    d["metadata"]["name"] = name
    d["spec"]["replicas"] = 1
    for c in d["spec"]["template"]["spec"]["containers"]:
        for p in c.get("ports", []):
            p.update(hostIP="127.0.0.1", hostPort=free_port())
    return d


def with_tls(d):
    """The replica serving HTTPS, the pair from the ConfigMap mnistd-tls-test."""
    spec = d["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "tls"]
    c["args"] = c["args"] + ["--tls-cert", mount["mountPath"] + "/tls.crt",
                             "--tls-key", mount["mountPath"] + "/tls.key"]
    for probe in ("readinessProbe", "livenessProbe"):
        c[probe]["httpGet"]["scheme"] = "HTTPS"
    (volume,) = [v for v in spec["volumes"] if v["name"] == "tls"]
    volume.pop("secret")
    volume["configMap"] = {"name": "mnistd-tls-test"}
    return d


for r in range(replicas):
    write("serve-r%d.yaml" % r, [replica("mnistd-r%d" % r)])
    write("serve-tls-r%d.yaml" % r, [with_tls(replica("mnistd-tls-r%d" % r))])


def text(path):
    with open(path) as f:
        return f.read()


write("tls-configmap.yaml", [{"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "mnistd-tls-test"},
                              "data": {"tls.crt": text(cert), "tls.key": text(key)}}])
config, job = load("train-job.yaml")
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "mnistd-train", "labels": job["spec"]["template"]["metadata"]["labels"]},
       "spec": copy.deepcopy(job["spec"]["template"]["spec"])}
assert pod["spec"]["restartPolicy"] == "Never"
write("train.yaml", [config, pod])
print(replicas)
