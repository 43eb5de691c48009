"""Every output format carries IPTC's Digital Source Type in XMP beside its label, read back
by readers that are not ours (exiftool, Pillow) and by walking the container's own layout;
the packet is inside the byte budget."""

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from memeswap.inference.media.encode import encode_frames
from memeswap.inference.media.provenance import DIGITAL_SOURCE_TYPE, GIF_XMP_APP, XMP_UUID
from memeswap.inference.pipeline import AI_LABEL
from tests.inference.media.frames import moving_frames

FORMATS = ["gif", "mp4", "webp"]


def exiftool(path: Path) -> dict:
    """What exiftool reads from `path` (the README's test command installs it: its absence
    is a failure, not a skip)."""
    exe = shutil.which("exiftool")
    assert exe, "exiftool is missing: apt-get install libimage-exiftool-perl (the README's test command does)"
    out = subprocess.run([exe, "-j", "-G1", "-a", str(path)], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)[0]


def xmp_in_container(data: bytes, fmt: str) -> bytes:
    """The XMP packet found by walking the container: GIF blocks, RIFF chunks, MP4 boxes."""
    if fmt == "gif":
        pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
        while data[pos] == 0x21:
            if data[pos + 1] == 0xFF and data[pos + 3:pos + 14] == GIF_XMP_APP:
                start = pos + 14
                return data[start:data.index(b'<?xpacket end="r"?>', start) + 19]
            pos += 2
            while data[pos]:  # sub-blocks: the magic trailer makes the packet parse as them
                pos += 1 + data[pos]
            pos += 1
        raise AssertionError("no XMP application extension before the first image")
    if fmt == "webp":
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
        assert data[12:16] == b"VP8X" and data[20] & 0x04, "the VP8X header flags XMP"
        pos = 12
        while pos < len(data):
            size = int.from_bytes(data[pos + 4:pos + 8], "little")
            if data[pos:pos + 4] == b"XMP ":
                return data[pos + 8:pos + 8 + size]
            pos += 8 + size + size % 2
        raise AssertionError("no XMP chunk")
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        assert size >= 8, "a box size this reader does not handle"
        if data[pos + 4:pos + 8] == b"uuid" and data[pos + 8:pos + 24] == XMP_UUID.bytes:
            return data[pos + 24:pos + size]
        pos += size
    raise AssertionError("no XMP uuid box")


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_carries_the_digital_source_type_beside_its_label(fmt, tmp_path):
    media = encode_frames(moving_frames(12, 96, 64), fmt, fps=12, comment=AI_LABEL)
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(media.data)
    tags = exiftool(path)
    assert tags["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert tags["XMP-dc:Description"] == AI_LABEL
    assert not any(key.endswith(":Warning") for key in tags), tags
    packet = xmp_in_container(media.data, fmt)
    assert DIGITAL_SOURCE_TYPE.encode() in packet and AI_LABEL.encode() in packet
    if fmt == "gif":  # still a GIF that Pillow plays through, and Pillow sees the extension
        with Image.open(io.BytesIO(media.data)) as gif:
            assert gif.n_frames == 12 and gif.info["comment"] == AI_LABEL.encode()
            assert gif.info["extension"][0] == GIF_XMP_APP


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_a_label_there_is_no_xmp(fmt):
    media = encode_frames(moving_frames(4, 64, 48), fmt, fps=12)
    assert b"xpacket" not in media.data and DIGITAL_SOURCE_TYPE.encode() not in media.data


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_packet_counts_in_the_byte_budget(fmt):
    frames = moving_frames(24, 160, 120)
    full = encode_frames(frames, fmt, fps=12, comment=AI_LABEL)
    budget = len(full.data) * 6 // 10
    fitted = encode_frames(frames, fmt, fps=12, max_bytes=budget, comment=AI_LABEL)
    assert len(fitted.data) <= budget
    assert DIGITAL_SOURCE_TYPE.encode() in xmp_in_container(fitted.data, fmt)
