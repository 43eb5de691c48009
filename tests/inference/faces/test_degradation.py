"""The blur and grain estimates against blur and grain of known amount added to real faces
(the astronaut, Grace Hopper, a face of insightface's t1.jpg), at full and half size: the
validation `inference.faces.degradation`'s docstring states."""

import cv2
import numpy as np
import pytest

from memeswap.inference.faces.degradation import blur_sigma, grain_std
from memeswap.inference.media.decode import read_frames
from memeswap.inference.samples import crop_face
from memeswap.inference.templates.catalog import builtin_templates_dir


@pytest.fixture(scope="module")
def faces(analyser, astronaut, group):
    """(name, image, landmarks) for three photos, each at full and half size."""
    from PIL import Image

    from memeswap.inference.samples import grace_hopper_path

    with Image.open(grace_hopper_path()) as photo:
        grace = np.asarray(photo.convert("RGB"))
    image, group_faces = group
    photos = {"astronaut": astronaut, "grace hopper": grace, "t1": crop_face(image, group_faces[2])}
    found = []
    for name, photo in photos.items():
        for scale in (1.0, 0.5):
            scaled = photo if scale == 1 else cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            found.append((f"{name} x{scale}", scaled, analyser.analyse(scaled)[0].landmarks))
    return found


def test_a_sharp_photo_reads_sharp_and_added_blur_reads_its_sigma(faces):
    for name, image, points in faces:
        own = blur_sigma(image, points)
        assert own < 1.0, (name, own)
        for sigma in (2.0, 3.0, 4.0):
            blurred = cv2.GaussianBlur(image, (0, 0), sigma)
            expected = np.hypot(own, sigma)
            assert abs(blur_sigma(blurred, points) - expected) <= 0.2 * expected, (name, sigma)


def test_added_grain_reads_its_std(faces):
    rng = np.random.default_rng(1)
    for name, image, points in faces:
        own = grain_std(image, points)
        for std in (4.0, 8.0, 12.0):
            grey_noise = rng.normal(0, std, image.shape[:2])[..., None]
            noisy = np.clip(np.rint(image + grey_noise), 0, 255).astype(np.uint8)
            expected = np.hypot(own, std)
            assert abs(grain_std(noisy, points) - expected) <= 0.1 * expected + 0.6, (name, std)


def test_a_clean_template_frame_reads_no_grain(analyser):
    frame = next(read_frames(builtin_templates_dir() / "pan" / "template.mp4"))
    assert grain_std(frame, analyser.analyse(frame)[0].landmarks) < 1.0


def test_brightness_and_contrast_do_not_change_the_blur_reading(faces):
    name, image, points = faces[2]
    blurred = cv2.GaussianBlur(image, (0, 0), 2.5)
    dimmed = np.clip(blurred.astype(np.float32) * 0.5 + 40, 0, 255).astype(np.uint8)
    assert abs(blur_sigma(dimmed, points) - blur_sigma(blurred, points)) < 0.2
