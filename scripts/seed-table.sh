#!/bin/sh
# Trains every seed network in specs/ (scripts/seed-networks.txt) with its
# spec's seed and prints the README's table:
#   scripts/seed-table.sh [MNISTD] [DATA_DIR]
# Models go to a scratch directory; the table goes to stdout, progress to stderr.
set -eu
bin=${1:-build/mnistd}
data=${2:-data}
here=$(dirname "$0")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "| spec | network | params | dataset | epochs run | seconds | test accuracy | best training accuracy | notebook |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
grep -v '^#' "$here/seed-networks.txt" | while IFS='|' read -r spec network figure metric; do
    out=$("$bin" train "specs/$spec.json" --data "$data" --models "$scratch" 2>/dev/null | tail -n 1)
    field() { echo "$out" | sed -E "s/.*\"$1\":(\"?)([^,\"}]*).*/\2/"; }
    dataset=$(sed -nE 's/.*"dataset": *"([^"]*)".*/\1/p' "specs/$spec.json")
    acc=$(awk -v a="$(field test_accuracy)" 'BEGIN { printf "%.2f%%", a * 100 }')
    best=$(awk -v a="$(field best_train_accuracy)" 'BEGIN { printf "%.2f%%", a * 100 }')
    kind=$([ "$metric" = train ] && echo "best training" || echo test)
    echo "| $spec | $network | $(field params) | $dataset | $(field epochs) | $(field seconds) | $acc | $best | $figure% $kind |"
    echo "done: $spec" >&2
done
