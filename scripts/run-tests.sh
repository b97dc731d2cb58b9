#!/bin/sh
# Runs every Check test binary given, shows each one's output, and closes
# with one line over all of them: "tests: N passed, N failed".
# Exits non-zero if any check failed or any binary died.
total=0 bad=0 died=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
    echo "== $t"
    "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "FAILED: $t printed no Check summary (exit $rc)"
        died=$((died + 1))
        continue
    fi
    n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    total=$((total + n))
    bad=$((bad + f + e))
    [ "$rc" -eq 0 ] || [ $((f + e)) -gt 0 ] || { echo "FAILED: $t exited $rc"; died=$((died + 1)); }
done
echo "tests: $((total - bad)) passed, $((bad + died)) failed"
[ "$bad" -eq 0 ] && [ "$died" -eq 0 ]
