#!/usr/bin/env bash
# On the lent GPU machine, from the repository root:
#   bash deploy/gpu/run-suite.sh --out "$OUT" [--models-dir .gpu/models] [--photos-dir .gpu/photos]
# Installs the wheels carried in .whl/ (no network there), then runs benchmarks.gpu_suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/facebank-site .whl/*.whl
  export PYTHONPATH="/tmp/facebank-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m benchmarks.gpu_suite "$@"
