#!/bin/sh
# Regenerates the image's lock files from pyproject.toml, pinned with hashes, for Linux x86_64
# and Python 3.11 (the images' Python): `sh deploy/requirements/lock.sh` (needs uv on PATH).
# The images install exactly these with `pip --require-hashes`; commit the result.
set -eu
cd "$(dirname "$0")/../.."
common="--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --quiet"
# shellcheck disable=SC2086
uv pip compile pyproject.toml --extra provenance $common -o deploy/requirements/cpu.lock
# The GPU workers run the learned swapper (insightface). onnxruntime-gpu installs the same
# `onnxruntime` module as the CPU package, and insightface's opencv-python the same `cv2` as
# the headless build (without the libGL the slim base lacks): one of each is kept.
# shellcheck disable=SC2086
uv pip compile pyproject.toml --extra provenance --extra gpu --extra learned \
    --no-emit-package onnxruntime --no-emit-package opencv-python $common \
    -o deploy/requirements/gpu.lock
printf 'setuptools>=68\nwheel\n' | uv pip compile - $common -o deploy/requirements/build.lock
