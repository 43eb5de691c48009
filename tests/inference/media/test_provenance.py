"""Every output format carries IPTC's Digital Source Type in XMP beside its label, read back
by readers that are not ours (exiftool, Pillow) and by walking the container's own layout;
the packet is inside the byte budget."""

import io

import pytest
from PIL import Image

from memeswap.inference.media.encode import encode_frames
from memeswap.inference.media.provenance import DIGITAL_SOURCE_TYPE, GIF_XMP_APP
from memeswap.inference.pipeline import AI_LABEL
from tests.inference.media.frames import moving_frames
from tests.inference.media.metadata_readers import exiftool, xmp_in_container

FORMATS = ["gif", "mp4", "webp"]


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
    """A budget that the file without the packet fits and the one with it (~600 bytes more)
    does not: the encoder steps down so that the file with the packet fits."""
    frames = moving_frames(24, 160, 120)
    bare = encode_frames(frames, fmt, fps=12)
    budget = len(bare.data) + 100
    fitted = encode_frames(frames, fmt, fps=12, max_bytes=budget, comment=AI_LABEL)
    assert len(fitted.data) <= budget
    assert DIGITAL_SOURCE_TYPE.encode() in xmp_in_container(fitted.data, fmt)
