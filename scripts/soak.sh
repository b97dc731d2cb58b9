#!/bin/sh
# make soak: a bounded load test on loopback. Starts `mnistd serve` on
# 127.0.0.1 (a free port) with a temporary copy of the shipped models as its
# store, the data directory and a token; then scripts/soak.py runs wrk at
# SOAK_CONNECTIONS connections on POST /predict (multipart PNG, the default
# model, always its latest version) for SOAK_SECONDS while it trains,
# cancels and swaps versions of that same model. It checks: no socket error
# and only 200s for wrk, no 5xx anywhere, every job final, VmRSS at the end
# within max(SOAK_RSS_MARGIN_MB, SOAK_RSS_MARGIN_PCT %) of VmRSS after the
# warm-up; then SIGTERM must stop the server with exit status 0.
#   scripts/soak.sh MNISTD_BIN [DATA_DIR] [MODELS_DIR]
# Environment: SOAK_SECONDS (60), SOAK_CONNECTIONS (64), SOAK_WARMUP (8),
# SOAK_RSS_MARGIN_MB (10), SOAK_RSS_MARGIN_PCT (10), SOAK_KEEP=1 keeps the
# temporary directory (server log: non-200 request lines and warnings).
set -eu
bin=$(realpath "$1")
data=$(realpath "${2:-data}")
models=$(realpath "${3:-models}")
cd "$(dirname "$0")/.."

command -v wrk >/dev/null || { echo "soak: wrk is missing (scripts/deps.sh wrk)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mnistd-soak.XXXXXX")
pid="" filter=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    [ -z "$filter" ] || wait "$filter" 2>/dev/null || true
    if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/store" "$tmp/pngs"
cp -R "$models/." "$tmp/store/"
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

# The server logs one line per request: keep what is not a 200 (and every
# line that is not a request), not the million lines of a minute's load.
mkfifo "$tmp/log.fifo"
grep --line-buffered -v '"status":200,' <"$tmp/log.fifo" >"$tmp/server.log" &
filter=$!
MNISTD_TOKEN=$token "$bin" serve --host 127.0.0.1 --port 0 --models "$tmp/store" \
    --data "$data" --shipped-models "" --watch-interval 1 2>"$tmp/log.fifo" &
pid=$!

port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*"msg":"listening","url":"http:\/\/127.0.0.1:\([0-9]*\)\/".*/\1/p' \
        "$tmp/server.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/server.log"; echo "soak: the server did not start"; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/server.log"; echo "soak: the server did not start"; exit 1; }
echo "soak: mnistd serve (pid $pid) on 127.0.0.1:$port, store $tmp/store"

# A few MNIST test digits as PNGs, from the server itself.
for i in 0 1 2 3 4 5 6 7; do
    curl -fsS -o "$tmp/pngs/$i.png" "http://127.0.0.1:$port/datasets/mnist/samples/$i"
done

rc=0
python3 scripts/soak.py --port "$port" --pid "$pid" --token "$token" --store "$tmp/store" \
    --png-dir "$tmp/pngs" --seconds "${SOAK_SECONDS:-60}" --warmup "${SOAK_WARMUP:-8}" \
    --connections "${SOAK_CONNECTIONS:-64}" --watch-interval 1 \
    --rss-margin-mb "${SOAK_RSS_MARGIN_MB:-10}" --rss-margin-pct "${SOAK_RSS_MARGIN_PCT:-10}" \
    --json "$tmp/report.json" || rc=1

kill -TERM "$pid"
src=0
wait "$pid" || src=$?
pid=""
wait "$filter" || true
filter=""
if [ "$src" -ne 0 ]; then
    echo "soak: FAILED: the server exited $src on SIGTERM"
    rc=1
fi
if grep -q '"status":5[0-9][0-9]' "$tmp/server.log"; then
    echo "soak: FAILED: 5xx in the server's log:"
    grep '"status":5[0-9][0-9]' "$tmp/server.log" | head -n 20
    rc=1
fi
nlog=$(grep -c '"status":' "$tmp/server.log" || true)
echo "soak: server log: $nlog non-200 request lines (explained above), server exit $src"
[ "$rc" -eq 0 ] || { SOAK_KEEP=1; echo "soak: FAILED"; }
exit "$rc"
