#!/usr/bin/env bash
# A Python 3.11 base image made from Debian bookworm's own packages (mmdebstrap), for machines
# that reach a Debian mirror but no container registry. Imported into buildah's storage as TAG.
# Usage: deploy/image/debian-base.sh [TAG]   (default localhost/facebank-base:bookworm)
set -euo pipefail
tag=${1:-localhost/facebank-base:bookworm}
if buildah inspect --type image "$tag" >/dev/null 2>&1; then
  echo "$tag exists"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"; [[ -n "${container:-}" ]] && buildah rm "$container" >/dev/null' EXIT
# python3-venv: the Containerfile makes a venv; ca-certificates: TLS to a package index.
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$work/rootfs.tar"
container=$(buildah from scratch)
buildah add --quiet "$container" "$work/rootfs.tar" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --cmd python3 "$container"
buildah commit --quiet "$container" "$tag" >/dev/null
echo "$tag built"
