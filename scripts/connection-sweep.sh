#!/bin/sh
# The throughput of POST /predict across connection counts, for the
# README: starts `MNISTD_BIN serve` on a free loopback port with
# --max-connections 4000 (far above every count; its only flag, so an
# older binary runs it too) and a copy of the shipped models, runs
# `wrk -t2 -cN -d${SWEEP_SECONDS:-3}s -s bench/predict.lua` for each N, and
# prints one line per count: N, requests/s, non-2xx, socket errors, p99.
#   scripts/connection-sweep.sh MNISTD_BIN [N ...]   (default 256 511 512 513 520 1000)
set -eu
bin=$(realpath "$1")
shift
counts=${*:-256 511 512 513 520 1000}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "sweep: wrk is missing (scripts/deps.sh wrk)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mnistd-sweep.XXXXXX")
pid=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
cp -R models "$tmp/store"
mkdir "$tmp/pngs"
"$bin" serve --host 127.0.0.1 --port 0 --models "$tmp/store" --data data \
    --max-connections 4000 2>"$tmp/log" &
pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*"url":"http:\/\/127.0.0.1:\([0-9]*\)\/".*/\1/p' "$tmp/log" | head -n 1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/log"; exit 1; }
for i in 0 1 2 3 4 5 6 7; do
    curl -fsS -o "$tmp/pngs/$i.png" "http://127.0.0.1:$port/datasets/mnist/samples/$i"
done
echo "connections requests/s non2xx socket_errors p99_ms ($bin, $(nproc) cores)"
for n in $counts; do
    line=$(cd bench && PNG_DIR="$tmp/pngs" wrk -t2 -c"$n" -d"${SWEEP_SECONDS:-3}"s \
        -s predict.lua "http://127.0.0.1:$port/predict" | tail -n 1)
    echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin); n=sys.argv[1]; print(n, round(r["rps"]), r["non2xx"], r["socket_errors"], r["lat_p99_ms"])' "$n"
done
