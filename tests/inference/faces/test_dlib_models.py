"""dlib's model files, shared by the human-face check and the protected-face descriptor."""

import subprocess
import sys

import pytest

from memeswap.inference.faces.dlib_models import dlib_model_path
from memeswap.inference.faces.human_check import CNN_MODEL_FILE
from memeswap.inference.safety.protected_faces import RECOGNITION_MODEL_FILE, SHAPE_MODEL_FILE


def test_every_model_file_used_ships_in_the_installed_package():
    for name in (CNN_MODEL_FILE, SHAPE_MODEL_FILE, RECOGNITION_MODEL_FILE):
        assert dlib_model_path(name).stat().st_size > 0
    with pytest.raises(FileNotFoundError, match="install face-recognition-models"):
        dlib_model_path("no_such_model.dat")


def test_the_human_face_check_does_not_load_the_safety_screens():
    """inference.faces is below inference.safety: the check imports no screen."""
    code = ("import sys, inference.faces.human_check; "
            "print(sorted(m for m in sys.modules if m.startswith('memeswap.inference.safety')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
