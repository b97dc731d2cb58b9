#!/bin/sh
# make fuzz's two halves (see the Makefile):
#   scripts/fuzz.sh libpng DIR
#       Debian's libpng1.6 source package (apt-get source through a private
#       deb-src list, the system's apt config untouched) unpacked with its
#       patches and built static with clang, instrumented for libFuzzer, ASan
#       and UBSan, into DIR/src (headers) and DIR/src/.libs/libpng16.a.
#       Does nothing when that library is already there.
#   scripts/fuzz.sh run DIR SECONDS BIN...
#       Runs each libFuzzer binary for SECONDS on tests/fuzz/corpus/TARGET
#       (BIN is DIR/bin/fuzz_TARGET), new inputs going to DIR/corpus/TARGET,
#       a crash's input to DIR/crashes/TARGET-*, the log to DIR/logs/; prints
#       executions and coverage per target and fails if any target crashed.
set -e
what=$1
dir=$2
case "$what" in
libpng)
    [ -f "$dir/src/.libs/libpng16.a" ] && exit 0
    mkdir -p "$dir/apt/parts" "$dir/apt/lists/partial"
    dir=$(cd "$dir" && pwd)
    if ! ls "$dir"/libpng1.6_*.dsc >/dev/null 2>&1; then
        # The first stanza only (the main archive): the security suite's .dsc 404s.
        awk 'BEGIN { RS = ""; ORS = "\n" } NR == 1' /etc/apt/sources.list.d/debian.sources |
            sed 's/^Types: deb$/Types: deb-src/' >"$dir/apt/parts/src.sources"
        set -- -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$dir/apt/parts" \
            -o Dir::State::Lists="$dir/apt/lists" -qq
        # as root, apt would drop to _apt, who cannot write here
        [ "$(id -u)" -ne 0 ] || set -- "$@" -o APT::Sandbox::User=root
        apt-get "$@" update
        (cd "$dir" && apt-get "$@" source --download-only libpng1.6)
    fi
    rm -rf "$dir/src"
    # apt-get source checked the files against the signed Sources index;
    # the keyring dpkg-source wants for the .dsc's own signature is not installed.
    dpkg-source --no-check -x "$(ls "$dir"/libpng1.6_*.dsc | tail -n 1)" "$dir/src" >/dev/null
    san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
    (cd "$dir/src" && CC=clang CFLAGS="-g -O1 $san" ./configure --disable-shared --quiet &&
        make -s -j2 libpng16.la >/dev/null 2>&1)
    echo "fuzz: instrumented $(ls "$dir"/libpng1.6_*.dsc | tail -n 1 | sed 's|.*/||; s|\.dsc$||')"
    ;;
run)
    seconds=$3
    shift 3
    mkdir -p "$dir/crashes" "$dir/logs"
    failed=""
    for bin in "$@"; do
        t=${bin##*/fuzz_}
        mkdir -p "$dir/corpus/$t"
        log="$dir/logs/$t.log"
        rc=0
        ASAN_OPTIONS=quarantine_size_mb=64:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
            -print_final_stats=1 -artifact_prefix="$dir/crashes/$t-" \
            "$dir/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
        ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
        secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
        printf 'fuzz %-9s %9s runs in %s s, cov %s, ft %s, %s inputs in %s\n' "$t" \
            "${runs:-?}" "${secs:-?}" "${cov:-?}" "${ft:-?}" "$(ls "$dir/corpus/$t" | wc -l)" \
            "$dir/corpus/$t"
        if [ "$rc" -ne 0 ]; then
            grep -E 'ERROR|SUMMARY|runtime error|Test unit written|^    #[0-9] ' "$log" | head -n 30
            echo "fuzz $t: FAILED (exit $rc), log in $log"
            failed="$failed $t"
        fi
    done
    [ -z "$failed" ] || { echo "fuzz: crashes in$failed (inputs in $dir/crashes/)"; exit 1; }
    ;;
*)
    echo "usage: scripts/fuzz.sh libpng DIR | run DIR SECONDS BIN..." >&2
    exit 2
    ;;
esac
