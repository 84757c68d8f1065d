#!/usr/bin/env bash
# What an image weighs and what takes the space: its size, then the largest installed packages
# and the model files, measured inside it. Usage: deploy/image/size.sh [TAG]
set -euo pipefail
tag=${1:-localhost/facebank:latest}
echo "$tag: $(buildah images --format '{{.Size}}' "$tag" | head -1)"
container=$(buildah from "$tag")
trap 'buildah rm "$container" >/dev/null' EXIT
buildah run --isolation chroot --user root "$container" -- sh -c '
  du -sm / --exclude=/proc --exclude=/sys --exclude=/dev 2>/dev/null | sed "s/\t.*/ MB in all/"
  du -sm /opt/facebank-models /opt/facebank/lib/python3*/site-packages/* 2>/dev/null \
    | sort -rn | head -12'
