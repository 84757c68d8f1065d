#!/usr/bin/env bash
# Download the wheels the GPU suite needs into .whl/ (git-ignored), for Python 3.12 on
# manylinux x86_64, without their dependencies: the lent machine's image has the rest.
# Usage: deploy/gpu/fetch-wheels.sh [core|all|video]   (default all; core: no HTTP part; video:
# all and PyAV, for the video part)
set -euo pipefail
cd "$(dirname "$0")/../.."
lists=(deploy/gpu/wheels-core.txt)
[[ "${1:-all}" != core ]] && lists+=(deploy/gpu/wheels-http.txt)
[[ "${1:-all}" == video ]] && lists+=(deploy/gpu/wheels-video.txt)
mapfile -t requirements < <(grep -hv '^#' "${lists[@]}" | sed '/^$/d')
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
           manylinux1_x86_64 manylinux_2_24_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64; do
  platforms+=(--platform "$tag")
done
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d .whl "${requirements[@]}"
du -sh .whl
