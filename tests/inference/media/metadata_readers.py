"""Readers of output metadata that are not memeswap's: exiftool, and a walk over each
container's own layout that finds the XMP packet."""

import json
import shutil
import subprocess
from pathlib import Path

from memeswap.inference.media.provenance import GIF_XMP_APP, XMP_UUID


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
