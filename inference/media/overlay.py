"""What memes draw on top of the swapped face: an animated overlay layer and caption text."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageSequence


def read_overlay(path: Path) -> Iterator[np.ndarray]:
    """RGBA frames of an (animated) overlay image, one per template frame."""
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            yield np.asarray(frame.convert("RGBA"))


def caption_layer(width: int, height: int, text: str, position: str = "bottom") -> np.ndarray:
    """Meme-style text (white, black outline, upper case) as an RGBA layer of the frame's size."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    text = text.upper()
    size = max(12, height // 9)
    while True:
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, stroke_width=max(1, size // 12))
        if right - left <= 0.94 * width or size <= 10:
            break
        size = int(size * 0.9)
    x = (width - (right - left)) / 2 - left
    margin = height * 0.03
    y = margin - top if position == "top" else height - margin - bottom
    draw.multiline_text((x, y), text, font=font, fill=(255, 255, 255, 255), align="center",
                        stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0, 255))
    return np.asarray(layer)


def composite(frame: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Alpha-composite an RGBA layer over an RGB frame of the same size."""
    if layer.shape[:2] != frame.shape[:2]:
        import cv2

        layer = cv2.resize(layer, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
    alpha = layer[..., 3:4].astype(np.float32) / 255.0
    if not alpha.any():
        return frame
    mixed = frame.astype(np.float32) * (1 - alpha) + layer[..., :3].astype(np.float32) * alpha
    return mixed.astype(np.uint8)
