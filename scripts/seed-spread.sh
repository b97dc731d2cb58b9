#!/bin/sh
# Trains seed networks with seeds 1..N and prints how their accuracy spreads
# over the draws of the weights and the shuffles, beside the notebook's one
# unseeded draw (scripts/seed-networks.txt):
#   scripts/seed-spread.sh N SPEC_NAME... (environment: MNISTD, DATA)
# e.g. scripts/seed-spread.sh 50 fashion-sigmoid10 fashion-homework-relu
# One line per run goes to stderr; the table goes to stdout.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 N SPEC_NAME..." >&2; exit 2; }
n=$1
shift
bin=${MNISTD:-build/mnistd}
data=${DATA:-data}
here=$(dirname "$0")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "| spec | seeds | epochs run | test accuracy: min, median, max | best training accuracy: min, median, max | notebook | seeds at or above it |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for spec in "$@"; do
    line=$(grep "^$spec|" "$here/seed-networks.txt") || { echo "$0: $spec is not in seed-networks.txt" >&2; exit 2; }
    figure=$(echo "$line" | cut -d'|' -f3)
    metric=$(echo "$line" | cut -d'|' -f4)
    : >"$scratch/runs"
    seed=1
    while [ "$seed" -le "$n" ]; do
        out=$("$bin" train "specs/$spec.json" --seed "$seed" --data "$data" --models "$scratch/m" \
              2>/dev/null | tail -n 1)
        rm -rf "$scratch/m"
        field() { echo "$out" | sed -E "s/.*\"$1\":([^,}]*).*/\1/"; }
        echo "$(field epochs) $(field test_accuracy) $(field best_train_accuracy)" >>"$scratch/runs"
        echo "$spec seed $seed: $(tail -n 1 "$scratch/runs")" >&2
        seed=$((seed + 1))
    done
    col=$([ "$metric" = train ] && echo 3 || echo 2)
    kind=$([ "$metric" = train ] && echo "best training" || echo test)
    reach=$(awk -v c="$col" -v f="$figure" '$c * 100 >= f - 1e-9 { k++ } END { print k + 0 }' "$scratch/runs")
    spread() {
        sort -g -k"$1" "$scratch/runs" | awk -v c="$1" '{ v[NR] = $c }
            END { m = (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2
                  printf "%.2f%%, %.2f%%, %.2f%%", v[1] * 100, m * 100, v[NR] * 100 }'
    }
    epochs=$(sort -n -k1 "$scratch/runs" | awk '{ v[NR] = $1 } END { print (v[1] == v[NR] ? v[1] : v[1] "-" v[NR]) }')
    echo "| $spec | 1-$n | $epochs | $(spread 2) | $(spread 3) | $figure% $kind | $reach of $n |"
done
