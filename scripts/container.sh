#!/bin/sh
# make container / make container-test: builds deploy/Dockerfile with podman
# (no Docker engine runs on these machines) in a private store under
# build/podman, and with `test`, proves the image: a real /predict through
# the published port, a tiny training job, a restart that keeps the model,
# SIGTERM exiting 0.
#   scripts/container.sh build      the image localhost/mnistd:latest
#                                   (DATASETS=bundled: with the datasets in it)
#   scripts/container.sh test       build, then the checks above; then the
#                                   bundled image: datasets complete, training
# When no debian:bookworm-slim image can be pulled (no registry here), one is
# made with debootstrap from the configured Debian mirror, slimmed the way
# the official image is (no docs, man pages or locales).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
state=$here/build/podman
mkdir -p "$state"
export CONTAINERS_CONF="$state/containers.conf"
hard=$(ulimit -Hn)
[ "$hard" -gt 20000 ] && hard=20000
sed "s/nofile=20000:20000/nofile=$hard:$hard/" deploy/containers.conf >"$CONTAINERS_CONF"
podman() { command podman --root "$state/root" --runroot "$state/run" "$@"; }
image=localhost/mnistd:latest
bundled=localhost/mnistd:bundled
base=docker.io/library/debian:bookworm-slim

make_base() {
    podman image exists "$base" && return 0
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$state/rootfs
    rm -rf "$rootfs"
    echo "container: making $base with debootstrap from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 ||
        { tail -20 "$state/debootstrap.log"; exit 1; }
    # what the official slim image leaves out, and keeps out of later installs
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
    find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    tar -C "$rootfs" --numeric-owner -c . | podman import - "$base" >/dev/null
    rm -rf "$rootfs"
}

# build TAG DATASETS
build() {
    tag=$1
    make_base
    # the host's CA bundle, for npm behind a TLS-inspecting proxy (bundled data)
    ca=/etc/ssl/certs/ca-certificates.crt; [ -s "$ca" ] || ca=
    podman build --pull=never --network host --format docker -f deploy/Dockerfile -t "$tag" \
        --build-arg DATASETS="$2" ${ca:+--secret id=cacert,src=$ca} \
        . >"$state/build-$2.log" 2>&1 ||
        { tail -30 "$state/build-$2.log"; exit 1; }
    echo "container: built $tag, $(podman image inspect --format '{{.Size}}' "$tag" |
        awk '{printf "%.0f MB", $1 / 1e6}')"
}

# a tiny training job through the published port; it must succeed
train_tiny() {
    spec='{"name":"container-tiny","dataset":"mnist","layers":[{"type":"flatten"},
      {"type":"dense","units":16,"activation":"relu"},{"type":"dense","units":10,"activation":"softmax"}],
      "optimizer":{"type":"adam","learning_rate":0.001},"epochs":1,"batch_size":128,"seed":1}'
    job=$(curl -fsS -H 'Authorization: Bearer container-test' -H 'Content-Type: application/json' \
        -d "$spec" "http://127.0.0.1:$port/train") || fail "/train refused: $job"
    id=$(echo "$job" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
    status=
    for _ in $(seq 300); do
        status=$(curl -fsS "http://127.0.0.1:$port/jobs/$id" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
        case $status in succeeded|failed|cancelled) break ;; esac
        sleep 0.2
    done
    [ "$status" = succeeded ] || fail "job $id ended $status"
    echo "container-test: training job $id succeeded"
}

# The host port podman picked for the container's 8080: the tests publish
# on port 0 (CONTAINER_PORT to choose one), as a fixed one may be taken.
published_port() {
    podman port "$1" 8080/tcp | sed -n 's/.*:\([0-9][0-9]*\)$/\1/p' | head -n 1
}

test_image() {
    name=mnistd-test
    podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
    podman volume rm -f mnistd-test-store >/dev/null 2>&1 || true
    run() {
        # podman without systemd complains that it cannot set a timer for the
        # HEALTHCHECK; the test runs the check itself, so that noise goes to a log
        podman run -d --name "$name" -p "127.0.0.1:${CONTAINER_PORT:-}:8080" \
            -v mnistd-test-store:/var/lib/mnistd \
            -v "$here/data:/var/lib/mnistd/data:ro" -e MNISTD_DATA=/var/lib/mnistd/data \
            -v /usr/share/datasets:/usr/share/datasets:ro \
            -e MNISTD_TOKEN=container-test "$image" >/dev/null 2>>"$state/podman.log" ||
            { tail -5 "$state/podman.log"; exit 1; }
        port=$(published_port "$name") # a new one after each restart
        for _ in $(seq 50); do
            curl -fsS "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && return 0
            sleep 0.2
        done
        podman logs "$name" | tail -20
        echo "container: not ready on port $port" >&2
        exit 1
    }
    fail() { echo "container-test: $*" >&2; podman logs "$name" 2>&1 | tail -20; exit 1; }
    trap 'podman rm -f -t 2 "$name" >/dev/null 2>&1 || true' EXIT
    run
    user=$(podman exec "$name" id -u)
    [ "$user" != 0 ] || fail "runs as root"
    # a real prediction through the published port
    png=$state/digit.png
    curl -fsS "http://127.0.0.1:$port/datasets/mnist/samples/0?split=test" -o "$png" ||
        fail "no test sample"
    answer=$(curl -fsS -F "image=@$png" "http://127.0.0.1:$port/predict?model=mnist-cnn") ||
        fail "/predict failed"
    echo "$answer" | grep -q '"prediction":7' || fail "/predict answered $answer"
    echo "container-test: /predict of MNIST test sample 0 through port $port: 7"
    train_tiny
    # restart: the model is still there, and SIGTERM ended the server with 0
    podman stop -t 10 "$name" >/dev/null 2>>"$state/podman.log"
    code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
    [ "$code" = 0 ] || fail "exit code $code after SIGTERM"
    podman rm "$name" >/dev/null 2>>"$state/podman.log"
    run
    curl -fsS -F "image=@$png" "http://127.0.0.1:$port/predict?model=container-tiny" |
        grep -q '"version":1' || fail "container-tiny v1 not served after the restart"
    echo "container-test: after a restart (SIGTERM exit 0) container-tiny v1 still answers"
    health=$(podman healthcheck run "$name" >/dev/null 2>&1 && echo healthy || echo unhealthy)
    [ "$health" = healthy ] || fail "HEALTHCHECK says $health"
    echo "container-test: HEALTHCHECK healthy"
    podman rm -f -t 10 "$name" >/dev/null 2>>"$state/podman.log"
    podman volume rm -f mnistd-test-store >/dev/null
}

# the image with the datasets built in: both datasets complete, training
# works with nothing mounted
test_bundled() {
    name=mnistd-test-bundled
    podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
    trap 'podman rm -f -t 2 "$name" >/dev/null 2>&1 || true' EXIT
    podman run -d --name "$name" -p "127.0.0.1:${CONTAINER_PORT:-}:8080" \
        -e MNISTD_TOKEN=container-test "$bundled" >/dev/null 2>>"$state/podman.log" ||
        { tail -5 "$state/podman.log"; exit 1; }
    port=$(published_port "$name")
    for _ in $(seq 50); do
        curl -fsS "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break
        sleep 0.2
    done
    fail() { echo "container-test: $*" >&2; podman logs "$name" 2>&1 | tail -20; exit 1; }
    sets=$(curl -fsS "http://127.0.0.1:$port/datasets") || fail "no /datasets"
    for d in mnist fashion-mnist; do
        echo "$sets" | grep -q "\"name\":\"$d\",\"train_samples\":60000,\"test_samples\":10000" ||
            fail "bundled image lacks $d: $sets"
    done
    train_tiny
    echo "container-test: bundled datasets (mnist, fashion-mnist) complete, training job $id succeeded"
    podman rm -f -t 10 "$name" >/dev/null 2>>"$state/podman.log"
}

case ${1:-build} in
build) build "$image" "${DATASETS:-none}" ;;
test)
    build "$image" none
    test_image
    build "$bundled" bundled
    test_bundled
    ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
