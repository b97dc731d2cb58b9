#!/bin/sh
# make kube-test: the Kubernetes objects of deploy/k8s run for real in
# podman's pod engine (`podman kube play`; no Kubernetes installs here):
# the serving Deployment's replicas over one shared store volume (the
# PersistentVolumeClaim) and the training Job's pod publishing a new version
# into it. Checks that every replica serves the new version within the
# watch interval, and that a version deleted through one replica leaves
# every replica; the replicas run once more with HTTPS (a throwaway
# certificate, `serve --tls-cert --tls-key`), and take part in every check.
# Where podman 4.3 cannot run an object as written it runs
# the equivalent (tests/kube/podmanize.py says which and why). The image is
# scripts/container.sh's, with the datasets bundled (the Job's image). The
# same private podman store under build/podman.
# When podman cannot run containers on this machine, this says so with
# podman's error and exits 0 with "kube-test: SKIPPED".
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
state=$here/build/podman
out=$here/build/kube
mkdir -p "$state" "$out"
export CONTAINERS_CONF="$state/containers.conf"
hard=$(ulimit -Hn)
[ "$hard" -gt 20000 ] && hard=20000
sed "s/nofile=20000:20000/nofile=$hard:$hard/" deploy/containers.conf >"$CONTAINERS_CONF"
podman() { command podman --root "$state/root" --runroot "$state/run" "$@"; }
start=$(date +%s)
say() { echo "kube-test: $*"; }
fail() {
    echo "kube-test: FAILED: $*" >&2
    for p in $pods mnistd-train; do
        podman pod logs "$p" 2>&1 | tail -15 | sed "s/^/  $p: /" >&2 || true
    done
    exit 1
}
pods=""

# Can podman run here at all? Its own error, when not: the engine, then
# the runtime (the image build runs containers; an OCI runtime error there
# means none can run).
skip() {
    say "SKIPPED: podman cannot run containers on this machine:"
    sed 's/^/  /' "$1"
    exit 0
}
podman info >"$out/probe.log" 2>&1 || skip "$out/probe.log"
# The image, with the datasets (the Job trains in it); both tags the objects name.
if ! DATASETS=bundled scripts/container.sh build >"$out/build.log" 2>&1; then
    grep -qiE 'OCI (runtime|permission)|cgroups|setrlimit|runc|crun' "$out/build.log" &&
        skip "$out/build.log"
    fail "the image did not build: $(tail -20 "$out/build.log")"
fi
cat "$out/build.log"
podman tag localhost/mnistd:latest localhost/mnistd:bundled

token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# A throwaway pair, made now, naming each HTTPS replica (curl checks the
# chain and the name; the names are resolved to the pods' addresses below).
replicas=$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["spec"]["replicas"])' \
    deploy/k8s/deployment.yaml)
names=$(seq -f "DNS:mnistd-tls-r%g" -s, 0 $((replicas - 1)))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=mnistd-kube-test -addext "subjectAltName=$names" \
    -keyout "$out/tls.key" -out "$out/tls.crt" 2>"$out/openssl.log" ||
    fail "openssl: $(cat "$out/openssl.log")"
chmod 644 "$out/tls.key" # the replicas run as 65532
/usr/bin/python3 tests/kube/podmanize.py deploy/k8s "$out" "$token" "$out/tls.crt" \
    "$out/tls.key" >/dev/null
for r in $(seq 0 $((replicas - 1))); do pods="$pods mnistd-r$r-pod-0"; done

down() {
    for f in train $(seq -f serve-r%g 0 $((replicas - 1))) \
        $(seq -f serve-tls-r%g 0 $((replicas - 1))) store; do
        podman kube down "$out/$f.yaml" >/dev/null 2>&1 || true
    done
    podman volume rm -f mnistd-store >/dev/null 2>&1 || true
    for secret in mnistd-token mnistd-tls; do podman secret rm "$secret" >/dev/null 2>&1 || true; done
}
down
trap down EXIT
podman kube play "$out/store.yaml" >"$out/play.log" 2>&1 || fail "store: $(cat "$out/play.log")"
for secret in mnistd-token mnistd-tls; do # what `kubectl create secret` does
    podman secret create "$secret" "$out/secret-$secret.json" >>"$out/play.log" 2>&1 ||
        fail "secret $secret: $(tail -3 "$out/play.log")"
done
for r in $(seq 0 $((replicas - 1))); do
    podman kube play "$out/serve-r$r.yaml" >>"$out/play.log" 2>&1 ||
        fail "replica $r: $(tail -5 "$out/play.log")"
done

# Each replica at its pod's address (no Service in podman), ready.
ip_of() {
    podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
        "$(podman pod inspect --format '{{.InfraContainerID}}' "$1")"
}
urls=""
for p in $pods; do
    ip=$(ip_of "$p")
    [ -n "$ip" ] || fail "$p has no address"
    ok=""
    for _ in $(seq 100); do
        curl -fsS "http://$ip:8080/v2/health/ready" >/dev/null 2>&1 && { ok=1; break; }
        sleep 0.2
    done
    [ -n "$ok" ] || fail "$p not ready at $ip:8080"
    urls="$urls http://$ip:8080"
done
# The replicas again with HTTPS (`serve --tls-cert --tls-key`), the pair in
# a ConfigMap volume (podman 4.3 mounts no file of a Secret volume; the
# overlay is podmanize.py's): each answers at its name in the certificate,
# and not in plain HTTP. Both serve the same store, in every check below.
resolve=""
for r in $(seq 0 $((replicas - 1))); do
    podman kube play --configmap "$out/tls-configmap.yaml" "$out/serve-tls-r$r.yaml" \
        >>"$out/play.log" 2>&1 || fail "HTTPS replica $r: $(tail -5 "$out/play.log")"
    pods="$pods mnistd-tls-r$r-pod-0"
    ip=$(ip_of "mnistd-tls-r$r-pod-0")
    [ -n "$ip" ] || fail "mnistd-tls-r$r-pod-0 has no address"
    resolve="$resolve --resolve mnistd-tls-r$r:8080:$ip"
done
curl() { command curl --cacert "$out/tls.crt" $resolve "$@"; }
for r in $(seq 0 $((replicas - 1))); do
    u=https://mnistd-tls-r$r:8080 ok=""
    for _ in $(seq 100); do
        curl -fsS "$u/v2/health/ready" >/dev/null 2>"$out/tls-curl.log" && { ok=1; break; }
        sleep 0.2
    done
    [ -n "$ok" ] || fail "$u (mnistd-tls-r$r-pod-0) did not answer over HTTPS: $(cat "$out/tls-curl.log")"
    ip=$(ip_of "mnistd-tls-r$r-pod-0")
    command curl -sS -m 5 "http://$ip:8080/v2/health/ready" >/dev/null 2>&1 &&
        fail "$u answered plain HTTP"
    urls="$urls $u"
done
say "$replicas HTTPS replicas answer (curl --cacert, the certificate's names), not in plain HTTP"
say "replicas ready over one store volume:$urls"
watch=$(awk '/name: MNISTD_WATCH_INTERVAL/{getline; gsub(/[^0-9]/, ""); print; exit}' \
    deploy/k8s/deployment.yaml)
[ -n "$watch" ] || fail "no MNISTD_WATCH_INTERVAL in deploy/k8s/deployment.yaml"
model=$(awk -F'"' '/"name":/{print $4; exit}' deploy/k8s/train-job.yaml)

versions() { curl -fsS "$1/models/$model" 2>/dev/null | tr -d ' ' | sed -n 's/.*"versions":\[\([0-9,]*\)\].*/\1/p'; }
# Waits up to the watch interval and a second of slack for every replica to
# answer `test` (a shell condition on $v, the replica's versions of $model).
every_replica() {
    what=$1 test=$2
    for u in $urls; do
        t0=$(date +%s%N)
        while :; do
            v=$(versions "$u")
            eval "$test" && break
            [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt $(( (watch + 1) * 1000 )) ] ||
                fail "$u: $what not seen within the ${watch} s watch interval (versions: '$v')"
            sleep 0.1
        done
    done
}
before=$(versions "$(echo $urls | cut -d' ' -f1)")
[ -z "$before" ] || fail "the store already holds $model versions $before"

# The training Job, as its pod; it publishes into the shared volume.
podman kube play "$out/train.yaml" >>"$out/play.log" 2>&1 || fail "train: $(tail -5 "$out/play.log")"
ctr=mnistd-train-train
code=$(podman wait "$ctr") || fail "cannot wait for $ctr"
[ "$code" = 0 ] || fail "the training pod exited $code: $(podman logs "$ctr" 2>&1 | tail -5)"
trained=$(podman logs "$ctr" 2>/dev/null | tail -1)
version=$(echo "$trained" | sed -n 's/.*"version":\([0-9]*\).*/\1/p')
[ -n "$version" ] || fail "the training pod printed no version: $trained"
say "the training pod published $model v$version: $trained"
every_replica "$model v$version" 'echo ",$v," | grep -q ",$version,"'
say "every replica serves $model v$version within the ${watch} s watch interval"
for u in $urls; do
    answer=$(curl -fsS -H 'Content-Type: application/json' \
        --data "{\"pixels\":[$(seq -s, 784 | sed 's/[0-9]*/0/g')]}" \
        "$u/predict?model=$model&version=$version") || fail "$u: /predict on v$version failed"
    echo "$answer" | grep -q '"probabilities"' || fail "$u: /predict answered $answer"
done
say "every replica predicts with $model v$version"

# Deleted through the first replica: it leaves every replica.
first=$(echo $urls | cut -d' ' -f1)
code=$(curl -sS -o "$out/delete.json" -w '%{http_code}' -X DELETE \
    -H "Authorization: Bearer $token" "$first/models/$model/versions/$version")
[ "$code" = 200 ] || fail "DELETE through $first: $code $(cat "$out/delete.json")"
every_replica "the deletion of $model v$version" '! echo ",$v," | grep -q ",$version,"'
say "deleted through one replica, $model v$version left every replica within ${watch} s"
# protected mode does not stand in the way: the objects pass the token
code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$first/models/$model/versions/$version")
[ "$code" = 401 ] || fail "DELETE without the token: $code, not 401"
say "passed in $(( $(date +%s) - start )) s (podman $(command podman --version | cut -d' ' -f3);" \
    "a Deployment per replica and the Job as a Pod: tests/kube/podmanize.py)"
