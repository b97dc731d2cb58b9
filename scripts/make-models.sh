#!/bin/sh
# Regenerates the shipped models from their specs, deterministically (fixed
# seeds, one BLAS thread so sums are taken in one order), and prints the
# minutes each took:
#   scripts/make-models.sh MNISTD DATA_DIR MODELS_DIR [NAME...]
# NAME defaults to all four: the seed notebooks' mnist-cnn and fashion-cnn,
# and digits and fashion, the models at the state of the art for their size.
# Each model is trained into a scratch directory and copied in as v1.mnm.
set -e
bin=$1 data=$2 models=$3
shift 3
[ $# -gt 0 ] || set -- mnist-cnn fashion-cnn digits fashion
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for name in "$@"; do
    start=$(date +%s)
    MNISTD_BLAS_THREADS=1 "$bin" train "specs/$name.json" --data "$data" --models "$scratch" | tail -n 1
    end=$(date +%s)
    echo "$name: $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s"
    mkdir -p "$models/$name"
    cp "$scratch/$name/v1.mnm" "$models/$name/v1.mnm.new"
    mv "$models/$name/v1.mnm.new" "$models/$name/v1.mnm"
done
