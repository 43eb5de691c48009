"""GIF output without Pillow's slow quantiser: a fixed palette, an ordered dither through a
lookup table, and a streaming GIF89a writer that crops each frame to what changed.

`StreamingEncoder` (encode.py) gets the palette from ffmpeg's palettegen while frames
arrive, adds the colours of the faces (`face_palette`), then maps and writes the frames here.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image

from memeswap.inference.media.provenance import gif_xmp_extension


def _bayer(n: int) -> np.ndarray:
    """The n x n Bayer threshold matrix (values 0 .. n*n-1)."""
    m = np.zeros((1, 1), dtype=np.int32)
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return m


def read_palette(path: Path, max_colors: int) -> np.ndarray:
    """The distinct colours of a palettegen PNG, in order, as (N, 3) uint8."""
    with Image.open(path) as im:
        rows = np.asarray(im.convert("RGB")).reshape(-1, 3)[:max_colors]
    return distinct_colours(rows)


def distinct_colours(rows: np.ndarray) -> np.ndarray:
    """`rows` (N, 3) without repeats, first occurrences in their order."""
    _, first = np.unique(rows, axis=0, return_index=True)
    return rows[np.sort(first)]


def face_palette(crops: np.ndarray, colors: int) -> np.ndarray:
    """Up to `colors` colours for face crops (M, S, S, 3) uint8, by Pillow's fast octree
    (its median cut took 20-90 ms per job for no cleaner skin).

    A palette made over whole frames gives skin a handful of entries and its highlights
    fall to the nearest grey or blue: blotches on the forehead and nose. Reserving a
    quarter of the palette for these colours brings skin blotchiness from 2.1x to 1.2x MP4's on a swap
    (measured in tests/inference/media/test_gif_skin.py).
    """
    tiled = Image.fromarray(np.ascontiguousarray(crops.reshape(-1, crops.shape[2], 3)))
    quantised = tiled.quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    used = np.unique(np.asarray(quantised))
    palette = quantised.getpalette()
    assert palette is not None, "a quantised image is a palette image"
    return np.asarray(palette[:3 * 256], dtype=np.uint8).reshape(-1, 3)[used]


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB of (N, 3) float32 RGB in 0..255."""
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32)[None] / 255.0, cv2.COLOR_RGB2LAB)[0]


class PaletteMapper:
    """Maps RGB frames onto a fixed palette with an 8x8 ordered (Bayer) dither.

    Nearest colours are looked up in a table over 6-bit-per-channel colour cells, filled
    lazily with just the cells the frames use: a photo GIF touches ~30k of the 262k cells,
    so this is several times cheaper than filling it all. "Nearest" is measured in CIELAB:
    in RGB a light skin tone is often nearer a grey or a pale blue than the skin entry
    beside it, which shows as cold patches on faces. The dither amplitude is about half
    the typical spacing of the palette, so it hides banding at 32 colours as well as at 256.

    An ordered dither rather than error diffusion: Floyd-Steinberg (Pillow's) left less
    low-frequency error on skin, but its pattern moves with every small change, so the
    unchanged-pixel transparency of `GifWriter` stops working and files grew 1.4-3.9x.
    """

    _BITS = 6

    def __init__(self, palette: np.ndarray) -> None:
        self._palette = palette.astype(np.float32)
        self._palette_lab = _lab(self._palette)
        self._palette_lab_sq = (self._palette_lab ** 2).sum(axis=1)
        self._table = np.full(1 << (3 * self._BITS), -1, dtype=np.int16)
        self._tiles: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        if len(palette) > 1:
            dist = np.sqrt(((self._palette[:, None, :] - self._palette[None, :, :]) ** 2).sum(axis=-1))
            np.fill_diagonal(dist, np.inf)
            self._spread = 0.5 * float(np.median(dist.min(axis=1)))
        else:
            self._spread = 0.0

    def _tile(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Dither offsets as (positive part, negative part), uint8 (H, W, 3), for saturating adds."""
        tiles = self._tiles.get((width, height))
        if tiles is None:
            bayer = _bayer(8)
            offsets = np.rint(((bayer + 0.5) / bayer.size - 0.5) * self._spread).astype(np.int16)
            tile = np.tile(offsets, (height // 8 + 1, width // 8 + 1))[:height, :width, None].repeat(3, axis=2)
            tiles = (np.clip(tile, 0, 255).astype(np.uint8), np.clip(-tile, 0, 255).astype(np.uint8))
            self._tiles[(width, height)] = tiles
        return tiles

    def map(self, frame: np.ndarray) -> np.ndarray:
        bits = self._BITS
        plus, minus = self._tile(frame.shape[1], frame.shape[0])
        cells: np.ndarray = cv2.subtract(cv2.add(frame, plus), minus)
        cells >>= 8 - bits
        keys = cells[:, :, 0].astype(np.int32)
        keys <<= bits
        keys |= cells[:, :, 1]
        keys <<= bits
        keys |= cells[:, :, 2]
        indices = self._table[keys]
        missing = indices < 0
        if missing.any():
            new = np.unique(keys[missing])
            mask = (1 << bits) - 1
            centres = np.stack([(new >> (2 * bits)) & mask, (new >> bits) & mask, new & mask], axis=1)
            centres = (centres.astype(np.float32) + 0.5) * (1 << (8 - bits)) - 0.5
            for i in range(0, len(new), 32768):
                block = _lab(centres[i:i + 32768])
                self._table[new[i:i + 32768]] = np.argmin(
                    self._palette_lab_sq[None, :] - 2.0 * (block @ self._palette_lab.T), axis=1)
            indices = self._table[keys]
        return indices.astype(np.uint8)


_IDENTITY_PALETTE = bytes(v for i in range(256) for v in (i, i, i))


def _lzw_image_data(indices: np.ndarray) -> bytes:
    """GIF image data (LZW code size byte, sub-blocks, terminator) for an index array.

    Pillow's LZW encoder is C and fast, so a one-frame GIF of the indices is written with it
    (a "P" image with `optimize=False`, which keeps every index as it is, as Pillow
    documents) and its one image's data is read back out by walking the GIF's blocks
    (`_image_blocks`), whatever extensions or colour tables Pillow puts around it.
    """
    height, width = indices.shape
    image = Image.fromarray(np.ascontiguousarray(indices), mode="P")
    image.putpalette(_IDENTITY_PALETTE)
    buf = io.BytesIO()
    image.save(buf, format="GIF", optimize=False, interlace=False)
    images = list(_image_blocks(buf.getvalue()))
    if len(images) != 1 or images[0][0] != (width, height):
        raise RuntimeError(f"Pillow wrote {len(images)} images where one of {width}x{height} was asked for")
    return images[0][1]


def _image_blocks(data: bytes) -> Iterator[tuple[tuple[int, int], bytes]]:
    """Each image of a GIF: its (width, height) and its data (LZW code size byte, sub-blocks,
    terminator), read by the GIF89a block structure."""
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise RuntimeError("not a GIF")
    flags = data[10]
    pos = 13 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)  # header, screen, global colours
    while pos < len(data) and data[pos] != 0x3B:  # trailer
        introducer = data[pos]
        if introducer == 0x21:  # extension: label, then sub-blocks
            pos = _after_sub_blocks(data, pos + 2)
        elif introducer == 0x2C:  # image descriptor, local colours, LZW data
            width, height = struct.unpack_from("<HH", data, pos + 5)
            local = data[pos + 9]
            start = pos + 10 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0)
            pos = _after_sub_blocks(data, start + 1)
            yield (width, height), data[start:pos]
        else:
            raise RuntimeError(f"unknown GIF block 0x{introducer:02x}")


def _after_sub_blocks(data: bytes, pos: int) -> int:
    while data[pos]:
        pos += 1 + data[pos]
    return pos + 1


def _sub_blocks(payload: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(payload), 255):
        chunk = payload[i:i + 255]
        out.append(len(chunk))
        out += chunk
    out.append(0)
    return bytes(out)


class GifWriter:
    """A GIF89a with one global palette, written frame by frame to a file.

    Index len(palette) is reserved as the transparent colour: from the second frame
    on, each frame is cropped to the rectangle that changed and unchanged pixels in
    it are transparent (disposal "do not dispose"), which is what keeps meme GIFs
    with still backgrounds small.
    """

    def __init__(self, fh: IO[bytes], width: int, height: int, palette: np.ndarray,
                 loop: bool, comment: str | None, xmp: bytes | None = None) -> None:
        if len(palette) > 255:
            raise ValueError("a GIF palette has at most 255 colours plus the transparent one")
        self._fh = fh
        self._transparent = len(palette)
        self._previous: np.ndarray | None = None
        table = np.zeros((256, 3), dtype=np.uint8)
        table[:len(palette)] = palette
        head = bytearray(b"GIF89a")
        head += struct.pack("<HHBBB", width, height, 0xF7, 0, 0)  # global table of 256 colours
        head += table.tobytes()
        if loop:
            head += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
        if comment:
            head += b"\x21\xfe" + _sub_blocks(comment.encode("utf-8"))
        if xmp:
            head += gif_xmp_extension(xmp)
        fh.write(head)

    def add(self, indices: np.ndarray, delay_cs: int) -> None:
        x = y = 0
        height, width = indices.shape
        transparent = False
        if self._previous is None:
            region = indices
        else:
            changed = indices != self._previous
            rows = np.flatnonzero(changed.any(axis=1))
            if rows.size == 0:  # identical frame: a 1x1 transparent pixel keeps its delay
                region = np.full((1, 1), self._transparent, dtype=np.uint8)
                transparent = True
            else:
                cols = np.flatnonzero(changed.any(axis=0))
                y, x = int(rows[0]), int(cols[0])
                height, width = int(rows[-1]) + 1 - y, int(cols[-1]) + 1 - x
                region = indices[y:y + height, x:x + width].copy()
                same = ~changed[y:y + height, x:x + width]
                if same.any():
                    region[same] = self._transparent
                    transparent = True
        self._previous = indices
        height, width = region.shape
        gce = struct.pack("<BBBBHBB", 0x21, 0xF9, 4, (1 << 2) | int(transparent),
                          min(max(2, delay_cs), 0xFFFF), self._transparent, 0)
        descriptor = struct.pack("<BHHHHB", 0x2C, x, y, width, height, 0)
        self._fh.write(gce + descriptor + _lzw_image_data(region))

    def close(self) -> None:
        self._fh.write(b"\x3b")
