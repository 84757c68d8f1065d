#!/usr/bin/env bash
# Build facebank's image with buildah, from the repository root, the way the image tier does.
# Usage: deploy/image/build.sh [TAG [BUILDAH-BUD-OPTIONS...]]  (default localhost/facebank:latest)
#   BASE=image         the base image (default: the Containerfile's public Python 3.11 image)
#   CA_BUNDLE=file     a CA bundle for a TLS-intercepting proxy (default: the host's, if any)
# The host's pip configuration (an index, extra indexes, find-links) is handed to the build,
# and local folders it names are mounted read-only, so a machine with a package mirror builds
# offline from it.
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-localhost/facebank:latest}
args=(--isolation chroot --format docker -f deploy/Containerfile -t "$tag")
[[ -n "${BASE:-}" ]] && args+=(--build-arg "BASE=$BASE")
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[[ -s "$ca" ]] && args+=(--secret "id=ca_bundle,src=$ca")

pip_setting() {  # the host's effective value of one pip setting (environment first)
  local variable=$1 key=$2
  if [[ -n "${!variable:-}" ]]; then echo "${!variable}"; return; fi
  python3 -m pip config list 2>/dev/null | sed -n "s/^[a-z:]*\.$key='\(.*\)'$/\1/p" | head -1
}
mounted=()
mount_local() {  # mount each local folder a pip setting names, once
  local location folder
  for location in $1; do
    folder=${location#file://}
    [[ "$folder" == /* && -d "$folder" ]] || continue
    [[ "$folder" == */simple ]] && folder=${folder%/simple}
    [[ " ${mounted[*]} " == *" $folder "* ]] && continue
    mounted+=("$folder")
    args+=(-v "$folder:$folder:ro")
  done
}
for pair in PIP_INDEX_URL:index-url PIP_EXTRA_INDEX_URL:extra-index-url PIP_FIND_LINKS:find-links; do
  value=$(pip_setting "${pair%%:*}" "${pair#*:}")
  [[ -n "$value" ]] || continue
  args+=(--build-arg "${pair%%:*}=$value")
  mount_local "$value"
done
buildah bud "${args[@]}" "${@:2}" .
