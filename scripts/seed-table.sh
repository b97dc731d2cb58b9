#!/bin/sh
# Trains every seed network in specs/ and prints the README's table:
#   scripts/seed-table.sh [MNISTD] [DATA_DIR]
# Models go to a scratch directory; the table goes to stdout, progress to stderr.
set -eu
bin=${1:-build/mnistd}
data=${2:-data}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "| spec | network | params | dataset | epochs run | seconds | test accuracy | best training accuracy | notebook |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
while IFS='|' read -r spec network figure; do
    out=$("$bin" train "specs/$spec.json" --data "$data" --models "$scratch" 2>/dev/null | tail -n 1)
    field() { echo "$out" | sed -E "s/.*\"$1\":(\"?)([^,\"}]*).*/\2/"; }
    dataset=$(sed -nE 's/.*"dataset": *"([^"]*)".*/\1/p' "specs/$spec.json")
    acc=$(awk -v a="$(field test_accuracy)" 'BEGIN { printf "%.2f%%", a * 100 }')
    best=$(awk -v a="$(field best_train_accuracy)" 'BEGIN { printf "%.2f%%", a * 100 }')
    echo "| $spec | $network | $(field params) | $dataset | $(field epochs) | $(field seconds) | $acc | $best | $figure |"
    echo "done: $spec" >&2
done <<'LIST'
mnist-mlp64|Dense 64 relu, Dense 10 softmax, Adam (MNISTBasicNN)|97.41% test
mnist-sigmoid16|Dense 16 sigmoid, Dense 10 softmax, SGD (Neural network demo)|87.52% test
mnist-cnn|6 conv (3x3 and 1x1, strides 2), Dense 10, Adam (MNISTBasicCNN)|98.45% test
fashion-sigmoid10|Dense 10 sigmoid, Dense 10 sigmoid, SGD (Tutorial 1)|77.43% test
fashion-relu50-sgd|Dense 50 relu, Dense 10 softmax, SGD (Tutorial 2)|83.25% test
fashion-relu50-50-adam|Dense 50-50 relu, Dense 10 softmax, Adam (Tutorial 3)|87.62% test
fashion-cnn|Conv 64 k2 same, MaxPool 2, Dense 10, Adam (Tutorial 4)|89.84% test
fashion-homework-relu|Dense 20-40-20 relu, Adam 1e-3, batch 128, early stopping (Homework)|90.04% best training
fashion-homework-sigmoid|Dense 20-40-20 sigmoid, Adam 1e-3, batch 128, early stopping (Homework)|90.28% best training
LIST
