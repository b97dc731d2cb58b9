#!/bin/sh
# Regenerates the shipped default models from their specs, deterministically
# (fixed seeds, one BLAS thread so sums are taken in one order):
#   scripts/make-models.sh MNISTD DATA_DIR MODELS_DIR
# Each model is trained into a scratch directory and copied in as v1.mnm.
set -e
bin=$1 data=$2 models=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for name in mnist-cnn fashion-cnn; do
    MNISTD_BLAS_THREADS=1 "$bin" train "specs/$name.json" --data "$data" --models "$scratch" | tail -n 1
    mkdir -p "$models/$name"
    cp "$scratch/$name/v1.mnm" "$models/$name/v1.mnm.new"
    mv "$models/$name/v1.mnm.new" "$models/$name/v1.mnm"
done
