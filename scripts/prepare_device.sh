#!/usr/bin/env bash
# Run HERE, on a machine with network, before scripts/gpu_check.sh runs on a GPU machine.
#
# The GPU machines have torch, torchvision, timm, tensorboard, matplotlib,
# PyYAML, numpy and Pillow, but no network and no hydra-core / omegaconf.
# This gathers what they lack into two folders of the working tree that git
# ignores (added to .git/info/exclude) and that the device call carries:
#   .whl/   hydra-core, omegaconf, antlr4-python3-runtime wheels for CPython 3.12
#   .data/  the JPEG copy of CIFAR-10 and make_cifar10.py, which unpacks it
# Versions are the ones installed in .venv here (hydra-core 1.3.8,
# omegaconf 2.3.1, antlr4-python3-runtime 4.9.3 when this was written).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
SHARED_DATA=${SHARED_DATA:-../shared/data}

installed_version() {  # the version pip reports here, or the fallback given
    local found
    found=$("$PYTHON" -m pip show "$1" 2>/dev/null | awk '/^Version:/ {print $2}')
    echo "${found:-$2}"
}

HYDRA=$(installed_version hydra-core 1.3.8)
OMEGACONF=$(installed_version omegaconf 2.3.1)
ANTLR=4.9.3  # hydra-core 1.3 and omegaconf 2.3 pin antlr4-python3-runtime==4.9.*

mkdir -p .whl .data
# One version of each package only: two of the same name stop the install there.
for stale in .whl/hydra_core-* .whl/omegaconf-* .whl/antlr4_python3_runtime-*; do
    case "$stale" in
        *"-$HYDRA-"*|*"-$OMEGACONF-"*|*"-$ANTLR-"*|*'*'*) ;;
        *) echo "removing $stale (another version)"; rm -f "$stale" ;;
    esac
done

download() {
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$1"
}
download "hydra-core==$HYDRA"
download "omegaconf==$OMEGACONF"
# PyPI has antlr4-python3-runtime 4.9.3 as a source archive only; it is pure
# Python, so the wheel built here installs anywhere.
if ! ls .whl/antlr4_python3_runtime-"$ANTLR"-*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip wheel --quiet --no-deps "antlr4-python3-runtime==$ANTLR" -w .whl
fi

cp "$SHARED_DATA/cifar10-jpeg.tar.xz" "$SHARED_DATA/make_cifar10.py" .data/

mkdir -p .git/info
for path in /.whl/ /.data/; do
    grep -qxF "$path" .git/info/exclude 2>/dev/null || echo "$path" >>.git/info/exclude
done

ls -l .whl .data
du -sh .whl .data
echo "ready: carry [\".whl\", \".data\"] and run scripts/gpu_check.sh on the device"
