#!/usr/bin/env bash
# GPU check: run from the repository root on a machine with an NVIDIA GPU (CUDA 13 driver)
# and access to PyPI. Installs memeswap with onnxruntime-gpu in its own virtualenv, then
# times the learned swapper's model stage on the CUDA provider (batched vs one face per
# run) and full swap jobs. Takes a few minutes; extra arguments go to gpu_check.py.
set -euo pipefail
python3 -m venv .venv-gpu
.venv-gpu/bin/pip install -q . onnx
.venv-gpu/bin/pip uninstall -q -y onnxruntime
.venv-gpu/bin/pip install -q onnxruntime-gpu
.venv-gpu/bin/python deploy/gpu_check.py "$@"
