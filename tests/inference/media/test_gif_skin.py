"""GIF output keeps skin about as clean as MP4 output of the same job (issue 14: "blotches on
skin in GIF output that the same job as MP4 does not have").

The measure is `skin_blotchiness` (tests/inference/media/skin_error.py): the spread of the
smoothed colour error over the smooth skin of the faces, against the frames the encoder was
given. Before faces had palette entries of their own, a swapped face's forehead and nose
took greys and pale blues from the rest of the frame: 2.1x MP4's blotchiness on
dramatic-zoom with the swap, grain matching included (3.12 vs 1.46); now 1.2x (1.72 vs 1.45).
On the template's own frames, with face boxes 1.10x, without 1.42x.
"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from memeswap.inference import pipeline
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import StreamingEncoder, encode_frames
from memeswap.inference.media.gif_writer import PaletteMapper
from memeswap.inference.pipeline import SwapOptions, run_swap
from memeswap.inference.samples import crop_face
from tests.inference.media.skin_error import skin_blotchiness, skin_delta_e

TEMPLATE = "dramatic-zoom"  # 48 frames of 480x480, a zoom on a face: every pixel changes
# GIF's blotchiness may be at most this many times MP4's (libx264 at CRF 20) on the same job.
GIF_OVER_MP4 = 1.4


@pytest.fixture(scope="module")
def job(tmp_path_factory, group, analyser, swapper, compiled_builtins, human_check):
    """A folder with the selfie, the frames the job hands its encoder (this process runs the
    same job as the `memeswap` process will) and the face boxes of each frame."""
    folder = tmp_path_factory.mktemp("gif-skin")
    image, faces = group
    selfie = crop_face(image, faces[2])
    cv2.imwrite(str(folder / "selfie.png"), selfie[:, :, ::-1])
    written = []

    class Recording(StreamingEncoder):
        def write(self, frame, *args, **kwargs):
            written.append(np.array(frame))
            super().write(frame, *args, **kwargs)

    compiled = compiled_builtins(TEMPLATE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "StreamingEncoder", Recording)
        run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="mp4"), human_check=human_check)
    boxes = [[face.box for face in compiled.tracks.faces_at(i)] for i in range(len(written))]
    return folder, written, boxes


def memeswap_swap(folder: Path, output: str) -> list[np.ndarray]:
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(folder / "data")}
    result = subprocess.run([sys.executable, "-m", "memeswap", "swap", "selfie.png", "-t", TEMPLATE, "-o", output],
                            cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return list(read_frames(folder / output))


def test_a_swapped_face_in_a_gif_is_as_clean_as_in_an_mp4(job):
    folder, reference, boxes = job
    gif = memeswap_swap(folder, "out.gif")
    mp4 = memeswap_swap(folder, "out.mp4")
    assert skin_delta_e(reference, mp4, boxes) < 2.5  # the reference is the job the process ran
    gif_blotches, mp4_blotches = skin_blotchiness(reference, gif, boxes), skin_blotchiness(reference, mp4, boxes)
    assert gif_blotches <= GIF_OVER_MP4 * mp4_blotches, (gif_blotches, mp4_blotches)


def test_faces_given_to_the_encoder_get_clean_skin(compiled_builtins, tmp_path):
    """The template's own frames (no swap), through the encoder with and without face boxes."""
    compiled = compiled_builtins(TEMPLATE)
    frames = list(read_frames(compiled.template.media_path))
    boxes = [[face.box for face in compiled.tracks.faces_at(i)] for i in range(len(frames))]
    with StreamingEncoder("gif", fps=16) as encoder:
        for frame, frame_boxes in zip(frames, boxes):
            encoder.write(frame, faces=frame_boxes)
        with_faces = encoder.finish()
    mp4 = encode_frames(frames, "mp4", fps=16)
    without_faces = encode_frames(frames, "gif", fps=16)
    blotches = {}
    for name, media in (("with", with_faces), ("without", without_faces), ("mp4", mp4)):
        path = tmp_path / f"{name}.{media.format}"
        path.write_bytes(media.data)
        blotches[name] = skin_blotchiness(frames, list(read_frames(path)), boxes)
    assert blotches["with"] <= GIF_OVER_MP4 * blotches["mp4"], blotches
    assert blotches["with"] < blotches["without"], blotches


def test_nearest_colours_are_nearest_to_the_eye():
    """A skin highlight is nearer a cool grey than the skin tone beside it in RGB (37.7 vs
    44.8) but not in CIELAB (16.5 vs 11.1): it must map to the skin tone."""
    skin, grey = (222, 180, 158), (214, 214, 220)
    mapper = PaletteMapper(np.array([skin, grey, (0, 0, 0), (255, 255, 255)], np.uint8))
    indices = mapper.map(np.full((64, 64, 3), (236, 208, 190), np.uint8))
    assert (indices == 0).mean() > 0.9
